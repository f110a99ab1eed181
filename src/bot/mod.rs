//! The Telegram subscription bot (`allerta bot`, SPEC §9): citizens
//! subscribe with /start, choose zones with buttons, change language, stop,
//! erase their data; the "✅ Ricevuto" button under each alert records an
//! acknowledgement. Operators' chats (`admin_chats`) may also ask /ultima.
//! No alert can be sent from Telegram.
//!
//! A plain long-polling loop (one step per update, handled in order) rather
//! than teloxide's dispatcher: the bot is small, updates must be handled one
//! at a time against SQLite anyway, and the loop makes shutdown exact —
//! on SIGTERM the current update finishes, the offset is confirmed to
//! Telegram so nothing is handled twice after a restart, and it returns.
//! It shares the ledger's database with `send` (WAL, busy timeout).

pub mod store;
mod texts;

use std::time::Duration;

use teloxide::payloads::{
    AnswerCallbackQuerySetters, EditMessageReplyMarkupSetters, EditMessageTextSetters,
    GetUpdatesSetters, SendMessageSetters,
};
use teloxide::prelude::{Request, Requester};
use teloxide::types::{
    AllowedUpdate, BotCommand, CallbackQuery, ChatId, InlineKeyboardButton, InlineKeyboardMarkup,
    Message, MessageId, ParseMode, Update, UpdateKind,
};
use teloxide::{ApiError, RequestError};
use tokio_util::sync::CancellationToken;

use crate::channel::telegram::{ChatPacer, PER_CHAT_INTERVAL, error_text, parse_ack_data};
use crate::config::Config;
use crate::ledger::{Ledger, LedgerError};
use texts::Lang;

/// Seconds Telegram holds a getUpdates call open. teloxide ignores the
/// timeout hint of getUpdates, so this must stay below its client's 17 s.
const POLL_SECONDS: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("Telegram refused the bot token (401 Unauthorized): check channels.telegram.token")]
    InvalidToken,
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What the bot needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Declared zones: (id, name), in id order.
    pub zones: Vec<(String, String)>,
    pub sender: String,
    pub admin_chats: Vec<i64>,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            zones: config
                .zones
                .iter()
                .map(|(id, z)| (id.as_str().to_owned(), z.name.clone()))
                .collect(),
            sender: config.general.sender.clone(),
            admin_chats: config
                .channels
                .telegram
                .as_ref()
                .map(|t| t.admin_chats.clone())
                .unwrap_or_default(),
        }
    }

    fn zone_name(&self, id: &str) -> Option<&str> {
        self.zones
            .iter()
            .find(|(z, _)| z == id)
            .map(|(_, n)| n.as_str())
    }
}

/// The bot's commands. Parsed by hand: `/start@bot`, `/start payload` and
/// any case all work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Start,
    Zone,
    Lingua,
    Stato,
    Stop,
    Privacy,
    Cancellami,
    Help,
    Ultima,
}

impl Command {
    fn parse(text: &str, bot_username: &str) -> Option<Self> {
        let word = text.split_whitespace().next()?.strip_prefix('/')?;
        let name = match word.split_once('@') {
            Some((name, to)) if to.eq_ignore_ascii_case(bot_username) => name,
            Some(_) => return None, // addressed to another bot in a group
            None => word,
        };
        Some(match name.to_lowercase().as_str() {
            "start" => Self::Start,
            "zone" | "zones" => Self::Zone,
            "lingua" | "language" => Self::Lingua,
            "stato" | "status" => Self::Stato,
            "stop" => Self::Stop,
            "privacy" => Self::Privacy,
            "cancellami" => Self::Cancellami,
            "help" | "aiuto" => Self::Help,
            "ultima" => Self::Ultima,
            _ => return None,
        })
    }

    /// The menu Telegram shows next to the text box (operators' /ultima is
    /// left out).
    fn menu() -> Vec<BotCommand> {
        [
            ("start", "Iscriviti e scegli le zone"),
            ("zone", "Cambia le zone"),
            ("lingua", "Lingua / Language"),
            ("stato", "A cosa sei iscritto"),
            ("stop", "Non ricevere più avvisi"),
            ("privacy", "Quali dati teniamo"),
            ("cancellami", "Cancella subito i tuoi dati"),
            ("help", "Aiuto"),
        ]
        .into_iter()
        .map(|(c, d)| BotCommand::new(c, d))
        .collect()
    }
}

/// Runs the bot until `shutdown` is cancelled.
pub async fn run(
    api: teloxide::Bot,
    ledger: Ledger,
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<(), BotError> {
    let Some(username) = who_am_i(&api, &shutdown).await? else {
        return Ok(());
    };
    tracing::info!(%username, "bot started");
    if let Err(e) = api.set_my_commands(Command::menu()).await {
        tracing::warn!(error = %error_text(&e), "cannot set the command menu");
    }
    for (id, _) in &settings.zones {
        if zone_data(id).len() > 64 {
            tracing::warn!(zone = %id, "zone id too long for a Telegram button; it cannot be chosen in the bot");
        }
    }
    let bot = Bot {
        api,
        ledger,
        settings,
        username,
        chats: ChatPacer::new(PER_CHAT_INTERVAL),
    };
    bot.poll(&shutdown).await
}

/// getMe, retried until it works: the bot may start before the network.
async fn who_am_i(
    api: &teloxide::Bot,
    shutdown: &CancellationToken,
) -> Result<Option<String>, BotError> {
    let mut backoff = Duration::from_secs(1);
    loop {
        let result = tokio::select! {
            r = api.get_me() => r,
            () = shutdown.cancelled() => return Ok(None),
        };
        match result {
            Ok(me) => return Ok(Some(me.username().to_owned())),
            Err(RequestError::Api(ApiError::InvalidToken)) => return Err(BotError::InvalidToken),
            Err(e) => {
                tracing::warn!(error = %error_text(&e), "Telegram not reachable yet");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return Ok(None),
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

struct Bot {
    api: teloxide::Bot,
    ledger: Ledger,
    settings: Settings,
    username: String,
    chats: ChatPacer,
}

fn zone_data(id: &str) -> String {
    format!("zone:{id}")
}

const ZONES_DONE: &str = "zones:done";

impl Bot {
    /// The thin loop: fetch updates, handle each, remember the offset.
    async fn poll(&self, shutdown: &CancellationToken) -> Result<(), BotError> {
        let mut offset: i32 = 0;
        let mut backoff = Duration::from_secs(1);
        loop {
            let request = self
                .api
                .get_updates()
                .offset(offset)
                .timeout(POLL_SECONDS)
                .allowed_updates([
                    AllowedUpdate::Message,
                    AllowedUpdate::CallbackQuery,
                    AllowedUpdate::MyChatMember,
                ]);
            let result = tokio::select! {
                r = request.send() => r,
                () = shutdown.cancelled() => break,
            };
            match result {
                Ok(updates) => {
                    backoff = Duration::from_secs(1);
                    for update in updates {
                        offset = update.id.as_offset();
                        if let Err(e) = self.handle(update).await {
                            tracing::error!(error = %e, "update not handled");
                        }
                    }
                }
                Err(RequestError::Api(ApiError::InvalidToken)) => {
                    return Err(BotError::InvalidToken);
                }
                Err(e) => {
                    let wait = match &e {
                        RequestError::RetryAfter(s) => s.duration(),
                        _ => backoff,
                    };
                    tracing::warn!(error = %error_text(&e), ?wait, "getUpdates failed");
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
            }
        }
        // Confirm what was handled, so a restart does not handle it again.
        if offset != 0 {
            let confirm = self.api.get_updates().offset(offset).timeout(0).limit(1);
            let _ = tokio::time::timeout(Duration::from_secs(3), confirm.send()).await;
        }
        tracing::info!("bot stopped");
        Ok(())
    }

    /// One step: one update.
    async fn handle(&self, update: Update) -> Result<(), BotError> {
        match update.kind {
            UpdateKind::Message(m) => self.on_message(&m).await,
            UpdateKind::CallbackQuery(q) => self.on_callback(&q).await,
            UpdateKind::MyChatMember(m) => {
                // The user blocked the bot (or it was removed from a group):
                // stop sending before a send finds out the hard way.
                let kind = &m.new_chat_member.kind;
                if kind.is_banned() || kind.is_left() {
                    store::stop(self.ledger.conn(), &m.chat.id.to_string())?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn lang(&self, chat: &str) -> Result<Lang, BotError> {
        Ok(store::get(self.ledger.conn(), chat)?.map_or(Lang::It, |s| Lang::of(&s.language)))
    }

    async fn on_message(&self, m: &Message) -> Result<(), BotError> {
        let Some(text) = m.text() else {
            return Ok(());
        };
        let chat = m.chat.id;
        let key = chat.to_string();
        let conn = self.ledger.conn();
        let l = self.lang(&key)?;
        let Some(command) = Command::parse(text, &self.username) else {
            if m.chat.is_private() {
                self.say(chat, texts::unknown(l).into(), None).await;
            }
            return Ok(());
        };
        match command {
            Command::Start => {
                let s = store::start(conn, &key, "it")?;
                let l = Lang::of(&s.language);
                let keyboard = self.zone_keyboard(&s.zones, l);
                self.say(
                    chat,
                    texts::welcome(l, &self.settings.sender),
                    Some(keyboard),
                )
                .await;
            }
            Command::Zone => match store::get(conn, &key)? {
                Some(s) => {
                    let keyboard = self.zone_keyboard(&s.zones, l);
                    self.say(chat, texts::choose_zones(l).into(), Some(keyboard))
                        .await;
                }
                None => self.say(chat, texts::not_subscribed(l).into(), None).await,
            },
            Command::Lingua => {
                let keyboard = InlineKeyboardMarkup::new([[
                    InlineKeyboardButton::callback("🇮🇹 Italiano", "lang:it"),
                    InlineKeyboardButton::callback("🇬🇧 English", "lang:en"),
                ]]);
                self.say(chat, texts::choose_language().into(), Some(keyboard))
                    .await;
            }
            Command::Stato => {
                let text = match store::get(conn, &key)? {
                    Some(s) => {
                        let names = self.zone_names(&s.zones);
                        texts::status(l, s.active, &names, &s.language)
                    }
                    None => texts::not_subscribed(l).into(),
                };
                self.say(chat, text, None).await;
            }
            Command::Stop => {
                let text = if store::get(conn, &key)?.is_some() {
                    store::stop(conn, &key)?;
                    texts::stopped(l)
                } else {
                    texts::not_subscribed(l)
                };
                self.say(chat, text.into(), None).await;
            }
            Command::Privacy => {
                self.say(chat, texts::privacy(l, &self.settings.sender), None)
                    .await;
            }
            Command::Cancellami => {
                let erased = store::erase(conn, &key)?;
                tracing::info!(
                    deliveries = erased.deliveries_anonymised,
                    "a subscriber erased their data"
                );
                self.say(
                    chat,
                    texts::erased(l, erased.subscriber, erased.deliveries_anonymised),
                    None,
                )
                .await;
            }
            Command::Help => {
                let admin = self.is_admin(chat);
                self.say(chat, texts::help(l, admin), None).await;
            }
            Command::Ultima => {
                let text = if self.is_admin(chat) {
                    self.latest_alert()?
                } else {
                    texts::operators_only(l).into()
                };
                self.say(chat, text, None).await;
            }
        }
        Ok(())
    }

    async fn on_callback(&self, q: &CallbackQuery) -> Result<(), BotError> {
        let data = q.data.as_deref().unwrap_or_default();
        let chat = q
            .message
            .as_ref()
            .map_or(ChatId(q.from.id.0 as i64), |m| m.chat().id);
        let message_id = q.message.as_ref().map(|m| m.id());
        let key = chat.to_string();
        let conn = self.ledger.conn();
        let l = self.lang(&key)?;

        let answer = if let Some((delivery, token)) = parse_ack_data(data) {
            let outcome = store::acknowledge(conn, delivery, token, &key)?;
            if outcome == store::Ack::Invalid {
                tracing::warn!(
                    delivery,
                    "acknowledgement refused: token or chat do not match"
                );
            }
            texts::ack(l, outcome).to_owned()
        } else if data == ZONES_DONE {
            match store::get(conn, &key)? {
                Some(s) => {
                    let names = self.zone_names(&s.zones);
                    if let Some(mid) = message_id {
                        self.edit_text(chat, mid, texts::zones_saved(l, &names))
                            .await;
                    }
                    String::new()
                }
                None => texts::not_subscribed(l).to_owned(),
            }
        } else if let Some(zone) = data.strip_prefix("zone:") {
            match self.settings.zone_name(zone) {
                None => String::new(),
                Some(name) => match store::toggle_zone(conn, &key, zone)? {
                    Some(zones) => {
                        if let Some(mid) = message_id {
                            self.edit_keyboard(chat, mid, self.zone_keyboard(&zones, l))
                                .await;
                        }
                        texts::zone_toggled(l, name, zones.iter().any(|z| z == zone))
                    }
                    None => texts::not_subscribed(l).to_owned(),
                },
            }
        } else if let Some(code) = data.strip_prefix("lang:") {
            let code = if code == "en" { "en" } else { "it" };
            let l = Lang::of(code);
            if store::set_language(conn, &key, code)? {
                if let Some(mid) = message_id {
                    self.edit_text(chat, mid, texts::language_saved(l).into())
                        .await;
                }
                String::new()
            } else {
                texts::not_subscribed(l).to_owned()
            }
        } else {
            String::new()
        };

        let mut request = self.api.answer_callback_query(q.id.clone());
        if !answer.is_empty() {
            request = request.text(answer);
        }
        if let Err(e) = request.await {
            tracing::warn!(error = %error_text(&e), "answerCallbackQuery failed");
        }
        Ok(())
    }

    fn is_admin(&self, chat: ChatId) -> bool {
        self.settings.admin_chats.contains(&chat.0)
    }

    fn zone_names(&self, ids: &[String]) -> Vec<String> {
        ids.iter()
            .map(|z| self.settings.zone_name(z).unwrap_or(z).to_owned())
            .collect()
    }

    /// One button per zone, two per row, ticked when chosen; then "Fatto".
    fn zone_keyboard(&self, chosen: &[String], l: Lang) -> InlineKeyboardMarkup {
        let buttons: Vec<InlineKeyboardButton> = self
            .settings
            .zones
            .iter()
            .filter(|(id, _)| zone_data(id).len() <= 64)
            .map(|(id, name)| {
                let tick = if chosen.contains(id) { "✅" } else { "⬜" };
                InlineKeyboardButton::callback(format!("{tick} {name}"), zone_data(id))
            })
            .collect();
        let mut rows: Vec<Vec<InlineKeyboardButton>> =
            buttons.chunks(2).map(<[_]>::to_vec).collect();
        rows.push(vec![InlineKeyboardButton::callback(
            texts::done_button(l),
            ZONES_DONE,
        )]);
        InlineKeyboardMarkup::new(rows)
    }

    /// /ultima: the latest alert's counts, for operators.
    fn latest_alert(&self) -> Result<String, BotError> {
        use crate::template::html_escape as esc;
        let row = match self.ledger.alert(None) {
            Ok(row) => row,
            Err(LedgerError::NoAlerts) => return Ok(texts::no_alerts().into()),
            Err(e) => return Err(e.into()),
        };
        let counts = self.ledger.counts(&row.id)?;
        let mut text = format!(
            "<b>Ultima allerta</b> <code>{}</code>\n{}\n{} · {} · {} · {} · {}",
            esc(&row.id),
            esc(&row.headline),
            esc(&row.template),
            esc(&row.status),
            esc(&row.msg_type),
            esc(&row.state),
            esc(&row.created_at),
        );
        for (channel, c) in &counts {
            text.push_str(&format!(
                "\n<b>{}</b>: {} totali, {} inviati, {} consegnati, {} falliti, {} in corso, {} saltati, {} confermati",
                esc(channel),
                c.total,
                c.sent,
                c.delivered,
                c.failed,
                c.unsettled(),
                c.skipped,
                c.acknowledged
            ));
        }
        Ok(text)
    }

    /// Sends a reply, paced at one message per second per chat; a 429 is
    /// waited out twice at most. Failures are logged: a citizen's chat
    /// that cannot be answered must not stop the bot.
    async fn say(&self, chat: ChatId, text: String, keyboard: Option<InlineKeyboardMarkup>) {
        let mut request = self
            .api
            .send_message(chat, text)
            .parse_mode(ParseMode::Html);
        if let Some(k) = keyboard {
            request = request.reply_markup(k);
        }
        for _ in 0..3 {
            self.chats.wait(&chat.to_string()).await;
            match request.send_ref().await {
                Ok(_) => return,
                Err(RequestError::RetryAfter(s)) => tokio::time::sleep(s.duration()).await,
                Err(e) => {
                    tracing::warn!(error = %error_text(&e), "cannot answer a chat");
                    return;
                }
            }
        }
    }

    async fn edit_text(&self, chat: ChatId, message: MessageId, text: String) {
        let request = self
            .api
            .edit_message_text(chat, message, text)
            .parse_mode(ParseMode::Html);
        if let Err(e) = request.await {
            tracing::warn!(error = %error_text(&e), "cannot edit a message");
        }
    }

    async fn edit_keyboard(&self, chat: ChatId, message: MessageId, k: InlineKeyboardMarkup) {
        let request = self
            .api
            .edit_message_reply_markup(chat, message)
            .reply_markup(k);
        match request.await {
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => {}
            Err(e) => tracing::warn!(error = %error_text(&e), "cannot update the zone buttons"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_mentions_payloads_and_case() {
        assert_eq!(
            Command::parse("/start", "allerta_bot"),
            Some(Command::Start)
        );
        assert_eq!(
            Command::parse("/start@Allerta_Bot abc", "allerta_bot"),
            Some(Command::Start)
        );
        assert_eq!(Command::parse("/STOP", "allerta_bot"), Some(Command::Stop));
        assert_eq!(Command::parse("/start@other_bot", "allerta_bot"), None);
        assert_eq!(Command::parse("ciao", "allerta_bot"), None);
        assert_eq!(Command::parse("/nope", "allerta_bot"), None);
        assert_eq!(
            Command::parse("/cancellami", "allerta_bot"),
            Some(Command::Cancellami)
        );
    }

    #[test]
    fn the_menu_has_every_citizen_command() {
        let names: Vec<String> = Command::menu().into_iter().map(|c| c.command).collect();
        for name in &names {
            assert!(Command::parse(&format!("/{name}"), "b").is_some(), "{name}");
        }
        assert!(!names.contains(&"ultima".to_owned()));
    }
}
