//! allerta — an emergency communication broadcaster for a municipal civil
//! protection office.
//!
//! # Layout
//!
//! The data path is: template + audience → plan (one transaction) → ledger →
//! channel workers → provider → status.
//!
//! - [`alert`]: the alert layer: every safety rule of what may go out (§11).
//! - [`cli`]: one file per subcommand: parse → validated request → library.
//! - [`config`]: typed `allerta.toml`, secrets wrapped, unknown keys rejected.
//! - [`domain`]: newtypes parsed at the edge (phone, email, chat, ids).
//! - [`template`]: alert templates, strict rendering, SMS encoding (GSM 03.38).
//! - [`contacts`]: contact CSV/Excel files read into recipients, physical line numbers.
//! - [`audience`]: who an alert is for (zones, groups, all).
//! - [`ledger`]: SQLite: migrations, plan, contact registry, claim, record, hash-chained audit, drafts.
//! - [`dispatch`]: the engine: lanes (a loop around a testable turn) over a `Queue`, retry policy, pacing.
//! - [`web`]: public web files: banner.json/html, widget, CAP 1.2, Atom feed.
//! - [`serve`]: `allerta serve`: SMS delivery reports, voice calls' TwiML and
//!   callbacks, health, metrics, and the officer console (`serve::console`).
//! - [`channel`]: the `Channel` trait and its transports (outbox, email, telegram, sms, voice…, social posts).
//! - [`check`]: readiness probes for `allerta check` (database, channels).
//! - [`bot`]: the Telegram subscription bot (subscribers, acknowledgements).
//! - [`watch`]: `allerta watch`: drafts from official bulletins (DPC, CAP).
//! - [`error`]: the error type that knows its exit code.

pub mod alert;
pub mod audience;
pub mod bot;
pub mod channel;
pub mod check;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod ledger;
pub mod serve;
pub mod template;
pub mod watch;
pub mod web;

pub use error::Error;

/// Who runs a state-changing command, for the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    pub operator: String,
    pub host: String,
}

impl Actor {
    /// `--operator` if given, else the OS user (`sudo` keeps the real one).
    pub fn current(explicit: Option<&str>) -> Self {
        let operator = explicit
            .map(str::to_owned)
            .or_else(|| std::env::var("SUDO_USER").ok())
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .filter(|s| !s.is_empty())
            .or_else(os_user)
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            operator,
            host: hostname(),
        }
    }
}

/// The name of this process's real uid, from /etc/passwd (services and
/// cron jobs often run without $USER).
fn os_user() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid)
        .map(|f| f[0].to_owned())
        .or(Some(format!("uid:{uid}")))
}

pub fn hostname() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}
