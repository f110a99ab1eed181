//! `allerta serve` (SPEC §9): the HTTP receiver for SMS delivery reports,
//! `/healthz` and `/metrics`. The listener and the shutdown signal are
//! parameters, so tests bind `127.0.0.1:0` and the CLI maps SIGTERM to the
//! token.
//!
//! Routes:
//! - `GET|POST /sms/dlr`: Kannel's delivery report (our `dlr-url`).
//! - `GET|POST /sms/report`: the HTTP transport's status callback, read
//!   with `[channels.sms.http.callback]`.
//! - `GET|POST /voice/twiml`, `/voice/status`, `/voice/gather`: a voice
//!   call's instructions and callbacks (SPEC §14), authenticated by the
//!   delivery's key and the provider's signature (see [`voice`]).
//! - `GET /healthz`: `ok`, or 503 `unavailable` when the database cannot
//!   be read (never the error text: it names paths and SQLite details).
//! - `GET /metrics`: needs `Authorization: Bearer <token>` unless
//!   `[serve] metrics_public = true`.
//!
//! - `/console/…`: the officer console, when `[console]` is configured
//!   ([`console`], SPEC §17).
//!
//! Every report must carry the `[serve]` shared token (`?token=`, or
//! `Authorization: Bearer`, or `X-Allerta-Token`); anything else gets 401
//! and changes nothing. Timeouts and size limits: [`listen`].

pub mod console;
pub mod listen;
mod metrics;
mod reports;
mod voice;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::channel::sms::http_config::Callback;
use crate::config::{Config, Secret, ServeLimits};
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
    /// `/metrics` without the token (`[serve] metrics_public`).
    metrics_public: bool,
    limits: ServeLimits,
    console: Option<Arc<console::Console>>,
    /// The voice routes, when `[channels.voice]` is on the http transport.
    voice: Option<voice::VoiceRoutes>,
}

impl App {
    pub fn new(
        database: &crate::ledger::Database,
        token: Secret,
        callback: Option<Callback>,
    ) -> Result<Self, ServeError> {
        Ok(Self {
            ledger: Mutex::new(Ledger::open(database)?),
            token,
            callback,
            metrics: Metrics::default(),
            metrics_public: false,
            limits: ServeLimits::default(),
            console: None,
            voice: None,
        })
    }

    /// Serves the officer console too (SPEC §17).
    pub fn with_console(mut self, console: Option<console::Console>) -> Self {
        self.console = console.map(Arc::new);
        self
    }

    /// From `allerta.toml`: the database, `[serve] dlr_token` (required:
    /// an unauthenticated receiver would let anyone mark alerts delivered),
    /// and the HTTP transport's callback rules if any.
    pub fn from_config(config: &Config) -> Result<Self, ServeError> {
        let serve = config.serve.as_ref();
        let token = serve
            .ok_or_else(|| {
                ServeError::Config(
                    "serve needs a [serve] section with a dlr_token (dlr_token_env / dlr_token_file): every report must be authenticated".into(),
                )
            })?
            .dlr_token()
            .map_err(|m| ServeError::Config(format!("serve needs {m}")))?;
        let callback = config
            .channels
            .sms
            .as_ref()
            .and_then(|s| s.http.as_ref())
            .and_then(|h| h.callback.clone());
        let mut app = Self::new(&config.general.database, token, callback)?;
        if let Some(v) = &config.channels.voice {
            app.voice = voice::VoiceRoutes::from_config(v)
                .map_err(|m| ServeError::Config(format!("channels.voice: {m}")))?;
        }
        if let Some(s) = serve {
            app.metrics_public = s.metrics_public;
            app.limits = s.limits.clone();
        }
        Ok(app)
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
    let console = app.console.clone();
    let routes = Router::new()
        .route("/sms/dlr", get(reports::kannel).post(reports::kannel))
        .route("/sms/report", get(reports::http).post(reports::http))
        .route(
            "/voice/twiml",
            get(voice::instructions).post(voice::instructions),
        )
        .route("/voice/status", get(voice::status).post(voice::status))
        .route("/voice/gather", get(voice::keypress).post(voice::keypress))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(app);
    match console {
        Some(c) => routes.merge(console::router(c)),
        None => routes,
    }
}

/// Serves until `shutdown` is cancelled, then finishes the requests in
/// flight and returns.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = app.limits.clone();
    listen::serve(listener, router(app), limits, shutdown).await
}

/// Reads the database for real (a table of the schema, not `SELECT 1`,
/// which works even on a missing or unreadable file).
async fn healthz(State(app): State<Arc<App>>) -> (StatusCode, &'static str) {
    match app.ledger(|l| l.check_readable()).await {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::error!(error = %e, "healthz: the database cannot be read");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n")
        }
    }
}

async fn metrics(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), (StatusCode, &'static str)> {
    if !app.metrics_public && !reports::bearer_matches(&app, &headers) {
        return Err((StatusCode::UNAUTHORIZED, "unauthorized\n"));
    }
    let totals = app.ledger(|l| l.state_totals()).await.map_err(|e| {
        tracing::error!(error = %e, "metrics: the database cannot be read");
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n")
    })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(&totals),
    ))
}
