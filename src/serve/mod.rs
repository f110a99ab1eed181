//! `allerta serve` (SPEC §9): the HTTP receiver for SMS delivery reports,
//! `/healthz` and `/metrics`. The listener and the shutdown signal are
//! parameters, so tests bind `127.0.0.1:0` and the CLI maps SIGTERM to the
//! token.
//!
//! Routes:
//! - `GET|POST /sms/dlr`: Kannel's delivery report (our `dlr-url`).
//! - `GET|POST /sms/report`: the HTTP transport's status callback, read
//!   with `[channels.sms.http.callback]`.
//! - `GET /healthz`, `GET /metrics`.
//!
//! Every report must carry the `[serve]` shared token (`?token=`, or
//! `Authorization: Bearer`, or `X-Allerta-Token`); anything else gets 401
//! and changes nothing.

mod metrics;
mod reports;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::channel::sms::http_config::Callback;
use crate::config::{Config, Secret};
use crate::ledger::{Ledger, LedgerError};
pub use metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What the handlers share.
pub struct App {
    ledger: Mutex<Ledger>,
    token: Secret,
    callback: Option<Callback>,
    metrics: Metrics,
}

impl App {
    pub fn new(
        database: &Path,
        token: Secret,
        callback: Option<Callback>,
    ) -> Result<Self, ServeError> {
        Ok(Self {
            ledger: Mutex::new(Ledger::open(database)?),
            token,
            callback,
            metrics: Metrics::default(),
        })
    }

    /// From `allerta.toml`: the database, `[serve] dlr_token` (required:
    /// an unauthenticated receiver would let anyone mark alerts delivered),
    /// and the HTTP transport's callback rules if any.
    pub fn from_config(config: &Config) -> Result<Self, ServeError> {
        let token = config
            .serve
            .as_ref()
            .and_then(|s| s.dlr_token.clone())
            .ok_or_else(|| {
                ServeError::Config(
                    "serve needs [serve] dlr_token (dlr_token_env / dlr_token_file): every report must be authenticated".into(),
                )
            })?;
        let callback = config
            .channels
            .sms
            .as_ref()
            .and_then(|s| s.http.as_ref())
            .and_then(|h| h.callback.clone());
        Self::new(&config.general.database, token, callback)
    }

    /// Runs a closure on the ledger on the blocking pool (SQLite is sync).
    async fn ledger<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, String> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut ledger = app.ledger.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut ledger).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("ledger task failed: {e}"))?
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/sms/dlr", get(reports::kannel).post(reports::kannel))
        .route("/sms/report", get(reports::http).post(reports::http))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

/// Serves until `shutdown` is cancelled, then finishes the requests in
/// flight and returns.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn healthz(State(app): State<Arc<App>>) -> (StatusCode, String) {
    match app
        .ledger(|l| Ok(l.conn().query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await
    {
        Ok(_) => (StatusCode::OK, "ok\n".into()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")),
    }
}

async fn metrics(
    State(app): State<Arc<App>>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), (StatusCode, String)> {
    let totals = app
        .ledger(|l| l.state_totals())
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(&totals),
    ))
}
