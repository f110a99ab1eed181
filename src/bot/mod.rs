//! The Telegram subscription bot (`allerta bot`, SPEC §9): citizens
//! subscribe with /start, choose zones with buttons, change language, stop,
//! erase their data; the "✅ Ricevuto" button under each alert records an
//! acknowledgement. Operators' chats (`admin_chats`) may also ask /ultima.
//! No alert can be sent from Telegram.
//!
//! A plain long-polling loop rather than teloxide's dispatcher: the bot is
//! small and the loop makes shutdown exact — on SIGTERM the current batch
//! of updates finishes, the offset is confirmed to Telegram so nothing is
//! handled twice after a restart, and it returns. In a batch, each user's
//! updates are handled in order and different users' concurrently (in one
//! task: SQLite calls are short and synchronous; the waits are Telegram's
//! per-chat pacing), and each user has a budget ([`flood`]): one user
//! flooding the bot does not stall it for everyone (SPEC §13).
//!
//! `/ultima` is authorised by the sending user (`from.id` in
//! `admin_chats`, which holds user ids), never by the chat: in a group,
//! every member shares the chat id.
//! It shares the ledger's database with `send` (WAL, busy timeout).

mod command;
pub mod erasure;
mod flood;
mod handlers;
mod texts;

use std::time::Duration;

use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::{Request, Requester};
use teloxide::types::AllowedUpdate;
use teloxide::{ApiError, RequestError};
use tokio_util::sync::CancellationToken;

use crate::channel::telegram::{ChatPacer, PER_CHAT_INTERVAL, error_text};
use crate::config::Config;
use crate::ledger::{Ledger, LedgerError};
use command::Command;
use handlers::zone_data;

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
    /// Telegram user ids allowed to ask `/ultima`.
    pub admin_chats: Vec<i64>,
    /// `outbox/telegram.jsonl` is scrubbed of an erased chat id.
    pub outbox_dir: std::path::PathBuf,
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
            outbox_dir: config.general.outbox_dir.clone(),
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
    // Long polling does not work while a webhook is set (409 Conflict).
    if let Err(e) = api.delete_webhook().await {
        tracing::warn!(error = %error_text(&e), "cannot remove a webhook");
    }
    if let Err(e) = api.set_my_commands(Command::menu()).await {
        tracing::warn!(error = %error_text(&e), "cannot set the command menu");
    }
    for (id, _) in &settings.zones {
        if zone_data(id).len() > 64 {
            tracing::warn!(zone = %id, "zone id too long for a Telegram button; it cannot be chosen in the bot");
        }
    }
    if settings.admin_chats.iter().any(|id| *id < 0) {
        tracing::warn!(
            "channels.telegram.admin_chats holds a group id: /ultima is authorised by user id, so group ids grant nothing"
        );
    }
    let bot = Bot {
        api,
        ledger,
        settings,
        username,
        chats: ChatPacer::new(PER_CHAT_INTERVAL),
        flood: flood::Flood::default(),
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
    flood: flood::Flood,
}

/// Who sent an update: the user, or the chat when there is no user.
fn sender_of(update: &teloxide::types::Update) -> u64 {
    use teloxide::types::UpdateKind;
    match &update.kind {
        UpdateKind::Message(m) => m.from.as_ref().map_or(m.chat.id.0 as u64, |u| u.id.0),
        UpdateKind::CallbackQuery(q) => q.from.id.0,
        UpdateKind::MyChatMember(m) => m.from.id.0,
        _ => 0,
    }
}

impl Bot {
    /// One batch from getUpdates: per user in order, users concurrently,
    /// each user within their budget.
    async fn handle_batch(&self, updates: Vec<teloxide::types::Update>) {
        let mut by_user: Vec<(u64, Vec<teloxide::types::Update>)> = Vec::new();
        for update in updates {
            let user = sender_of(&update);
            match by_user.iter_mut().find(|(u, _)| *u == user) {
                Some((_, list)) => list.push(update),
                None => by_user.push((user, vec![update])),
            }
        }
        let work = by_user.into_iter().map(|(user, list)| async move {
            for update in list {
                let kind = match update.kind {
                    teloxide::types::UpdateKind::Message(_) => flood::Kind::Message,
                    _ => flood::Kind::Other,
                };
                if !self.flood.allow(user, kind) {
                    tracing::debug!(user, "over the per-user budget: update dropped");
                    continue;
                }
                if let Err(e) = self.handle(update).await {
                    tracing::error!(error = %e, "update not handled");
                }
            }
        });
        futures_util::future::join_all(work).await;
    }

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
                    if let Some(last) = updates.last() {
                        offset = last.id.as_offset();
                    }
                    self.handle_batch(updates).await;
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
}
