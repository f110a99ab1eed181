//! `allerta bot`: runs the Telegram subscription bot until SIGTERM/Ctrl-C.

use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::bot::{self, BotError, Settings};
use crate::channel::telegram;
use crate::config::TelegramTransport;
use crate::error::Error;
use crate::ledger::Ledger;

pub async fn run(ctx: &Ctx) -> Result<(), Error> {
    let config =
        ctx.config.channels.telegram.as_ref().ok_or_else(|| {
            Error::Input("allerta bot needs a [channels.telegram] section".into())
        })?;
    if config.transport != TelegramTransport::BotApi {
        return Err(Error::Input(
            "allerta bot needs channels.telegram.transport = \"bot-api\" and a token (the outbox transport reaches nobody)".into(),
        ));
    }
    let api = telegram::client(config)?;
    let ledger = Ledger::open(&ctx.config.general.database)?;
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(stop_on_signal(shutdown.clone()));
    if !ctx.json {
        eprintln!(
            "allerta bot: long polling {} (stop with SIGTERM or Ctrl-C)",
            config.api_url
        );
    }
    let result = bot::run(api, ledger, Settings::from_config(&ctx.config), shutdown).await;
    signals.abort();
    match result {
        Ok(()) => Ok(()),
        Err(BotError::InvalidToken) => Err(Error::Input(BotError::InvalidToken.to_string())),
        Err(BotError::Ledger(e)) => Err(e.into()),
    }
}

async fn stop_on_signal(token: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping the bot");
    token.cancel();
}
