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

mod command;
mod handlers;
pub mod store;
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
}
