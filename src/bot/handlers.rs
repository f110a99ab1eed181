//! One step per update: commands, button presses, membership changes.

use teloxide::payloads::{
    AnswerCallbackQuerySetters, EditMessageReplyMarkupSetters, EditMessageTextSetters,
    SendMessageSetters,
};
use teloxide::prelude::{Request, Requester};
use teloxide::types::{
    CallbackQuery, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageId,
    ParseMode, Update, UpdateKind,
};
use teloxide::{ApiError, RequestError};

use super::command::Command;
use super::texts::{self, Lang};
use super::{Bot, BotError};
use crate::channel::telegram::{error_text, parse_ack_data};
use crate::ledger::{Ack, LedgerError};

pub(super) fn zone_data(id: &str) -> String {
    format!("zone:{id}")
}

const ZONES_DONE: &str = "zones:done";

impl Bot {
    /// One step: one update.
    pub(super) async fn handle(&self, update: Update) -> Result<(), BotError> {
        match update.kind {
            UpdateKind::Message(m) => self.on_message(&m).await,
            UpdateKind::CallbackQuery(q) => self.on_callback(&q).await,
            UpdateKind::MyChatMember(m) => {
                // The user blocked the bot (or it was removed from a group):
                // stop sending before a send finds out the hard way.
                let kind = &m.new_chat_member.kind;
                if kind.is_banned() || kind.is_left() {
                    self.ledger.stop_subscriber(&m.chat.id.to_string())?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn lang(&self, chat: &str) -> Result<Lang, BotError> {
        Ok(self
            .ledger
            .subscriber(chat)?
            .map_or(Lang::It, |s| Lang::of(&s.language)))
    }

    async fn on_message(&self, m: &Message) -> Result<(), BotError> {
        let Some(text) = m.text() else {
            return Ok(());
        };
        let chat = m.chat.id;
        let key = chat.to_string();
        let l = self.lang(&key)?;
        let Some(command) = Command::parse(text, &self.username) else {
            if m.chat.is_private() {
                self.say(chat, texts::unknown(l).into(), None).await;
            }
            return Ok(());
        };
        match command {
            Command::Start => {
                let s = self.ledger.start_subscriber(&key, "it")?;
                let l = Lang::of(&s.language);
                let keyboard = self.zone_keyboard(&s.zones, l);
                self.say(
                    chat,
                    texts::welcome(l, &self.settings.sender),
                    Some(keyboard),
                )
                .await;
            }
            Command::Zone => match self.ledger.subscriber(&key)? {
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
                let text = match self.ledger.subscriber(&key)? {
                    Some(s) => {
                        let names = self.zone_names(&s.zones);
                        texts::status(l, s.active, &names, &s.language)
                    }
                    None => texts::not_subscribed(l).into(),
                };
                self.say(chat, text, None).await;
            }
            Command::Stop => {
                let text = if self.ledger.subscriber(&key)?.is_some() {
                    self.ledger.stop_subscriber(&key)?;
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
                let erased = self.ledger.erase_subscriber(&key)?;
                let outbox = self.settings.outbox_dir.join("telegram.jsonl");
                if let Err(e) = super::erasure::scrub_outbox(&outbox, &key) {
                    tracing::error!(error = %e, file = %outbox.display(), "erasure: cannot scrub the outbox");
                }
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
                let admin = self.is_admin(m);
                self.say(chat, texts::help(l, admin), None).await;
            }
            Command::Ultima => {
                let text = if self.is_admin(m) {
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
        let l = self.lang(&key)?;

        let answer = if let Some((delivery, token)) = parse_ack_data(data) {
            let outcome = self.ledger.acknowledge(delivery, token, &key)?;
            if outcome == Ack::Invalid {
                tracing::warn!(
                    delivery,
                    "acknowledgement refused: token or chat do not match"
                );
            }
            texts::ack(l, outcome).to_owned()
        } else if data == ZONES_DONE {
            match self.ledger.subscriber(&key)? {
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
                Some(name) => match self.ledger.toggle_zone(&key, zone)? {
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
            if self.ledger.set_language(&key, code)? {
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

    /// Operators are users, not chats: in a group every member shares the
    /// chat id, so only the sender's user id counts.
    fn is_admin(&self, m: &Message) -> bool {
        m.from.as_ref().is_some_and(|u| {
            i64::try_from(u.id.0).is_ok_and(|id| self.settings.admin_chats.contains(&id))
        })
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
            esc(row.status.as_str()),
            esc(row.msg_type.as_str()),
            esc(row.state.as_str()),
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
