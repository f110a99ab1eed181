//! `allerta serve`: the delivery-report receiver, `/healthz`, `/metrics`
//! (long-running, systemd). Stops cleanly on SIGTERM or Ctrl-C.

use std::io::Write;
use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::error::Error;
use crate::serve::{self, App, ServeError};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (default: [serve] listen)
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
}

impl From<ServeError> for Error {
    fn from(e: ServeError) -> Self {
        match e {
            ServeError::Config(m) => Error::Input(m),
            ServeError::Ledger(l) => Error::Ledger(l),
            ServeError::Io(e) => Error::Runtime(e.to_string()),
        }
    }
}

pub async fn run(ctx: &Ctx, args: ServeArgs) -> Result<(), Error> {
    let listen = args
        .listen
        .or_else(|| ctx.config.serve.as_ref().map(|s| s.listen.clone()))
        .ok_or_else(|| Error::Input("serve needs a [serve] section (listen, dlr_token)".into()))?;
    let app = App::from_config(&ctx.config)?;
    crate::ledger::Ledger::open(&ctx.config.general.database)?.audit(
        &ctx.actor,
        "serve",
        None,
        &serde_json::json!({ "listen": listen }),
    )?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| Error::Runtime(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Runtime(e.to_string()))?;
    let console = crate::serve::console::Console::from_config(&ctx.config, addr)
        .map_err(|m| Error::Input(format!("console: {m}")))?;
    let app = Arc::new(app.with_console(console));
    // One line on stdout with the bound address (port 0 picks one).
    if ctx.json {
        super::print_json(&serde_json::json!({ "listening": addr.to_string() }));
    } else {
        println!("listening on http://{addr}");
    }
    let _ = std::io::stdout().flush();
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(stop_on_signal(shutdown.clone()));
    let result = serve::run(listener, app, shutdown).await;
    signals.abort();
    result.map_err(|e| Error::Runtime(format!("serve: {e}")))?;
    eprintln!("serve stopped");
    Ok(())
}

async fn stop_on_signal(token: CancellationToken) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    token.cancel();
}
