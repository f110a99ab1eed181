//! The officer console inside `allerta serve` (SPEC §17): plain
//! server-rendered HTML (minijinja, HTML auto-escape on every template),
//! a little dependency-free JavaScript for the live counts, no external
//! scripts, fonts, tiles or CDN (the CSP header says so to the browser).
//!
//! - [`config`]: `[console]`; [`password`]: argon2id hashes.
//! - [`session`]: the server-side session store, cookies and CSRF tokens.
//! - [`limiter`]: failed logins per name and per address → 429.
//! - [`login`]: `/console/login`, `/console/logout`.
//! - [`alerts`]: `/console/` and one alert live (`…/live.json`).
//! - [`not_reached`]: who to phone, HTML and CSV.
//! - [`report`]: the after-action report.
//! - [`approvals`]: the two-person rule's pending alerts.
//! - [`svg`]: the zones map and the timeline chart, inline SVG.
//!
//! Only login/logout and approve/reject are POSTs; approve and reject go
//! through `alert::approval`, like the CLI. Nothing else changes state.

mod alerts;
mod approvals;
pub mod config;
mod limiter;
mod login;
mod not_reached;
pub mod password;
mod report;
mod session;
mod svg;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub use config::{ConsoleConfig, RawConsole};

use crate::config::Config;
use crate::ledger::{Ledger, LedgerError};
use session::{SessionData, Sessions};

/// Everything one console needs. Holds its own configuration (the
/// approval rules need it) and its own ledger connection.
pub struct Console {
    config: Config,
    console: ConsoleConfig,
    secure_cookies: bool,
    sessions: Sessions,
    limiter: limiter::Limiter,
    ledger: Mutex<Ledger>,
    pages: minijinja::Environment<'static>,
    /// Verified against when the user name is unknown, so a wrong name
    /// costs the same time as a wrong password.
    dummy_hash: String,
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

impl Console {
    /// `None` when `[console]` is not configured. `listen` is the bound
    /// address: on loopback the cookies go without `Secure` unless
    /// `secure_cookies = true` (a browser would not send them back over
    /// plain HTTP otherwise).
    pub fn from_config(config: &Config, listen: SocketAddr) -> Result<Option<Self>, String> {
        let Some(console) = config.console.clone() else {
            return Ok(None);
        };
        // A private copy of the configuration: `serve`'s own is borrowed.
        let config = Config::load(Some(&config.path)).map_err(|e| e.to_string())?;
        let ledger = Ledger::open(&config.general.database).map_err(|e| e.to_string())?;
        let secure_cookies = console.secure_cookies.unwrap_or(!listen.ip().is_loopback());
        Ok(Some(Self {
            sessions: Sessions::new(console.session_lifetime),
            limiter: limiter::Limiter::default(),
            ledger: Mutex::new(ledger),
            pages: pages()?,
            dummy_hash: password::hash("not a password: unknown user")?,
            secure_cookies,
            console,
            config,
        }))
    }

    /// Runs a closure on the ledger on the blocking pool (SQLite is sync).
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Ledger, &Config) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, Response> {
        let console = self.clone();
        tokio::task::spawn_blocking(move || {
            let ledger = console.ledger.lock().unwrap_or_else(|p| p.into_inner());
            f(&ledger, &console.config)
        })
        .await
        .map_err(|e| failure(&format!("ledger task failed: {e}")))?
        .map_err(|e| match e {
            LedgerError::UnknownAlert(id) => {
                (StatusCode::NOT_FOUND, format!("unknown alert `{id}`\n")).into_response()
            }
            e => failure(&e.to_string()),
        })
    }

    /// Renders a page; `ctx` gets the user, the CSRF token and the nav.
    fn render(&self, name: &str, user: &SessionData, ctx: minijinja::Value) -> Response {
        let ctx = minijinja::context! {
            user => user.user.clone(),
            csrf => user.csrf.clone(),
            approvals_on => self.config.approval.is_some(),
            ..ctx
        };
        match self.pages.get_template(name).and_then(|t| t.render(&ctx)) {
            Ok(html) => {
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
            }
            Err(e) => failure(&format!("template {name}: {e:#}")),
        }
    }

    /// The logged-in session, or a redirect to the login page.
    fn user(&self, headers: &HeaderMap) -> Result<SessionData, Denied> {
        match self.sessions.get(headers) {
            Some(s) if s.user.is_some() => Ok(s),
            _ => Err(Denied::LogIn),
        }
    }

    /// The logged-in session whose CSRF token the form carries; 403
    /// otherwise (a POST without a session cannot be from our pages).
    fn user_posting(
        &self,
        headers: &HeaderMap,
        form: &std::collections::HashMap<String, String>,
    ) -> Result<SessionData, Denied> {
        match self.sessions.get(headers) {
            Some(s) if s.user.is_some() && session::csrf_matches(&s, form) => Ok(s),
            _ => Err(Denied::Forbidden),
        }
    }
}

/// Why a request gets no page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Denied {
    /// Not logged in: to the login page.
    LogIn,
    /// A POST without the session's CSRF token: 403.
    Forbidden,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Self::LogIn => Redirect::to("/console/login").into_response(),
            Self::Forbidden => forbidden(),
        }
    }
}

/// An RFC 3339 UTC time in the comune's time zone, for people.
fn local_time(config: &Config, rfc3339: &str) -> String {
    crate::ledger::parse_utc(rfc3339)
        .map(|t| {
            t.with_timezone(&config.general.timezone)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| rfc3339.to_owned())
}

fn failure(message: &str) -> Response {
    tracing::error!(error = message, "console");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the console could not read the ledger; see the serve log\n",
    )
        .into_response()
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "forbidden: missing or wrong CSRF token (reload the page and try again)\n",
    )
        .into_response()
}

/// The templates, compiled in: `.html` names get HTML auto-escape.
fn pages() -> Result<minijinja::Environment<'static>, String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("login.html", include_str!("templates/login.html")),
        ("alerts.html", include_str!("templates/alerts.html")),
        ("alert.html", include_str!("templates/alert.html")),
        (
            "not_reached.html",
            include_str!("templates/not_reached.html"),
        ),
        ("report.html", include_str!("templates/report.html")),
        ("approvals.html", include_str!("templates/approvals.html")),
        ("message.html", include_str!("templates/message.html")),
    ] {
        env.add_template(name, source)
            .map_err(|e| format!("console template {name}: {e}"))?;
    }
    Ok(env)
}

/// Security headers on every console answer.
async fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("static/console.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("static/console.js"),
    )
}

pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(alerts::list))
        .route("/console/login", get(login::form).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route("/console/alerts/{id}", get(alerts::one))
        .route("/console/alerts/{id}/live.json", get(alerts::live))
        .route("/console/alerts/{id}/not-reached", get(not_reached::page))
        .route(
            "/console/alerts/{id}/not-reached.csv",
            get(not_reached::csv),
        )
        .route("/console/alerts/{id}/report", get(report::page))
        .route("/console/approvals", get(approvals::list))
        .route("/console/approvals/{id}/approve", post(approvals::approve))
        .route("/console/approvals/{id}/reject", post(approvals::reject))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/static/console.js", get(script))
        .layer(axum::middleware::map_response(harden))
        .with_state(console)
}

/// Any serde value as a template value.
fn ser<T: serde::Serialize>(value: T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}
