//! Readiness checks (`allerta check`, SPEC §6): the things an officer wants
//! to know before the storm season — the database takes writes, the outbox
//! directory is writable, and every enabled channel's service answers and
//! accepts our credentials. Nothing is ever sent.
//!
//! Each check yields one [`Item`]: what was checked, whether it is ready,
//! what was seen, and when it is not, what to fix. Per-channel probes live in
//! [`probe`]: one match arm per transport, so a new transport adds one arm
//! and one file.

pub mod files;
mod kannel;
pub mod probe;
mod serve;
mod sms_http;
mod smtp;
mod social;

use std::path::Path;

use serde::Serialize;

use crate::config::Config;

/// One line of the readiness report.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// What was checked: `config`, `templates`, `contacts`, `database`,
    /// `outbox`, or a channel id (`email`, `sms`, …).
    pub item: String,
    pub ok: bool,
    /// What was seen (never a secret).
    pub detail: String,
    /// When not ok: what the officer should do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Item {
    pub fn ok(item: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            item: item.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(
        item: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            item: item.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The database (see [`files::database`]): nothing is created or opened
/// for writing.
pub fn database(config: &Config) -> Item {
    match &config.general.database {
        crate::ledger::Database::Sqlite(path) => {
            files::database(path, crate::ledger::SCHEMA_VERSION)
        }
        crate::ledger::Database::Postgres(options) => postgres(options),
    }
}

/// A PostgreSQL database answers, as a primary, with a schema this
/// allerta knows (connecting only: nothing is migrated or written).
fn postgres(options: &crate::ledger::pg::PgOptions) -> Item {
    let shown = options.redacted();
    let known = crate::ledger::pg::SCHEMA_VERSION;
    match crate::ledger::sql::PgConn::probe(options) {
        Ok(version) if version > known => Item::fail(
            "database",
            format!("{shown}: schema version {version}, newer than this allerta knows ({known})"),
            "upgrade allerta on this machine to the version the others run",
        ),
        Ok(version) => Item::ok(
            "database",
            if version == known {
                format!("{shown}: PostgreSQL, schema version {version}")
            } else {
                format!(
                    "{shown}: PostgreSQL, schema version {version} (migrated to {known} at the next command)"
                )
            },
        ),
        Err(e) => Item::fail(
            "database",
            format!("{shown}: {e}"),
            "check general.database, the password (database_password_env/_file), that the server is up and that this machine may connect (pg_hba.conf)",
        ),
    }
}

/// The outbox directory exists (or can be created) and takes a file.
/// Its files, when there are some, are writable, owned like the
/// directory and not world-readable (they hold phones and addresses).
pub fn outbox_dir(dir: &Path, channels: &[String]) -> Item {
    let item = writable_dir(
        "outbox",
        dir,
        "general.outbox_dir",
        &format!(
            "{} on the outbox transport (reach nobody)",
            channels.join(", ")
        ),
    );
    if !item.ok {
        return item;
    }
    files::outbox_files(dir).unwrap_or(item)
}

pub use files::writable_dir;

/// Every check that needs a valid config, except templates and contacts
/// (which the CLI reports with its own renderers): database, outbox, one
/// probe per enabled channel, and `allerta serve` when delivery reports or
/// `[serve]` need it.
pub async fn services(config: &Config) -> Vec<Item> {
    let mut items = vec![database(config)];
    let outbox = probe::outbox_channels(config);
    if !outbox.is_empty() {
        let names: Vec<String> = outbox.iter().map(ToString::to_string).collect();
        items.push(outbox_dir(&config.general.outbox_dir, &names));
    }
    for channel in config.channels.configured() {
        items.push(probe::channel(config, channel).await);
    }
    if let Some(s) = &config.serve {
        items.push(serve::token(s));
    }
    match serve::health_url(config) {
        Some(Ok(url)) => items.push(serve::probe(&url).await),
        Some(Err(e)) => items.push(Item::fail("serve", e, "correct channels.sms.dlr_url")),
        None => {}
    }
    items
}
