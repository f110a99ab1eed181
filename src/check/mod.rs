//! Readiness checks (`allerta check`, SPEC §6): the things an officer wants
//! to know before the storm season — the database takes writes, the outbox
//! directory is writable, and every enabled channel's service answers and
//! accepts our credentials. Nothing is ever sent.
//!
//! Each check yields one [`Item`]: what was checked, whether it is ready,
//! what was seen, and when it is not, what to fix. Per-channel probes live in
//! [`probe`]: one match arm per transport, so a new transport adds one arm
//! and one file.

mod kannel;
pub mod probe;
mod serve;
mod sms_http;
mod smtp;

use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::ledger::Ledger;

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

/// The database opens, is migrated to the latest schema, and takes a write
/// lock (`BEGIN IMMEDIATE`, rolled back: nothing is changed).
pub fn database(config: &Config) -> Item {
    let path = &config.general.database;
    let shown = path.display();
    let fix_perm = format!(
        "make {} and its directory writable by the user that runs allerta (on a Debian install: the allerta user, e.g. `sudo -u allerta allerta check`)",
        shown
    );
    if let Some(owner) = root_would_create_for(path) {
        return Item::fail(
            "database",
            format!(
                "{shown} does not exist yet and this runs as root: it would be created owned by root, and the services (user id {owner}) could not write it"
            ),
            "run allerta as the owner of its directory, e.g. `sudo -u allerta allerta check`",
        );
    }
    let ledger = match Ledger::open(path) {
        Ok(l) => l,
        Err(e) => return Item::fail("database", format!("{shown}: {e}"), fix_perm),
    };
    let conn = ledger.conn();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
        return Item::fail("database", format!("{shown}: not writable: {e}"), fix_perm);
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap_or(-1);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap_or_default();
    Item::ok(
        "database",
        format!("{shown}: writable, schema version {version}, journal {mode}"),
    )
}

/// When running as root and the database is still to be created in a
/// directory owned by another user (the allerta user on a Debian install):
/// that user's id. SQLite keeps the owner of existing files, so only
/// creation is a problem.
fn root_would_create_for(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    if path.exists() || effective_uid()? != 0 {
        return None;
    }
    let owner = std::fs::metadata(path.parent()?).ok()?.uid();
    (owner != 0).then_some(owner)
}

/// The effective user id, from /proc (Linux; `None` elsewhere).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}

/// The outbox directory exists (or can be created) and takes a file.
pub fn outbox_dir(dir: &Path, channels: &[String]) -> Item {
    writable_dir(
        "outbox",
        dir,
        "general.outbox_dir",
        &format!(
            "{} on the outbox transport (reach nobody)",
            channels.join(", ")
        ),
    )
}

/// `dir` exists (or can be created) and takes a new file, which is removed
/// again. `key` names the setting in the fix.
pub fn writable_dir(item: &str, dir: &Path, key: &str, note: &str) -> Item {
    let shown = dir.display();
    let fix = format!("make {shown} writable by the user that runs allerta ({key})");
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Item::fail(item, format!("cannot create {shown}: {e}"), fix);
    }
    let probe = dir.join(format!(".allerta-check-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Item::ok(item, format!("{shown}: writable; {note}"))
        }
        Err(e) => Item::fail(item, format!("{shown}: not writable: {e}"), fix),
    }
}

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
