//! The public web artifacts (SPEC §8.4): `banner.json`, `banner.html`, the
//! widget `allerta-banner.js`, `cap/<id>.xml` and `feed.atom`, plus
//! `drill-banner.json`/`drill-banner.html` for drills and tests.
//!
//! Every file is derived from the ledger alone, so publishing is one
//! idempotent step: read which alerts are live, write every file. An alert
//! is live when its banner delivery went out (`sending`, `sent` or
//! `delivered`), it is not cancelled, not expired, and no published Update
//! replaced it. `Cancel` messages are never on the banner but stay in the
//! Atom feed until they expire, so aggregators learn of the cancellation.
//! Drills (`Exercise`, `Test`) only ever reach the `drill-*` files.
//!
//! Files are written atomically (hidden temp file + rename) and
//! world-readable; `banner.json` is never deleted (`{"alerts": []}` when
//! nothing is live).

mod atom;
mod banner;
pub(crate) use banner::italian_date;
mod cap;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::config::{BannerTransport, Config, Zone};
use crate::domain::{CapStatus, MsgType, ZoneId};
use crate::ledger::{Ledger, LedgerError};
use crate::template::Rendered;

/// The widget, embedded so the published copy always matches this binary.
const WIDGET: &str = include_str!("../../web/allerta-banner.js");

/// Where the fingerprint of the last publication is kept (hidden: the
/// nginx snippet answers 404 for dot files).
const STATE_FILE: &str = ".published";

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{path}: {source}{}", owner_hint(path, source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", db_text(path, source))]
    /// `path` is the database as shown (a file, or a URL without password).
    Db { path: String, source: LedgerError },
}

/// `database <path>: <what SQLite said>`, whether opening or reading failed.
fn db_text(path: &str, source: &LedgerError) -> String {
    match source {
        LedgerError::Open { .. } => source.to_string(),
        LedgerError::Sql(e) => format!("database {path}: {e}"),
        other => format!("database {path}: {other}"),
    }
}

/// On "permission denied", who owns the file (or its directory): the usual
/// cause is a command once run as root leaving root-owned files behind.
fn owner_hint(path: &Path, source: &std::io::Error) -> String {
    use std::os::unix::fs::MetadataExt;
    if source.kind() != std::io::ErrorKind::PermissionDenied {
        return String::new();
    }
    let (shown, meta) = match std::fs::metadata(path) {
        Ok(m) => (path, m),
        Err(_) => match path.parent().map(|d| (d, std::fs::metadata(d))) {
            Some((d, Ok(m))) => (d, m),
            _ => return String::new(),
        },
    };
    format!(
        " ({} is owned by uid {} gid {}, mode {:o}; the public files must be writable by the user that runs allerta, e.g. `chown -R allerta:allerta` the directory)",
        shown.display(),
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777
    )
}

/// What publishing needs from the config.
#[derive(Debug, Clone)]
pub struct Site {
    pub database: crate::ledger::Database,
    pub output_dir: PathBuf,
    /// Absolute base URL of `output_dir`, ending with `/`.
    pub public_url: Option<String>,
    pub sender: String,
    pub sender_id: String,
    pub timezone: chrono_tz::Tz,
    pub default_language: String,
    pub zones: BTreeMap<ZoneId, Zone>,
}

impl Site {
    /// The site when `[channels.banner] transport = "files"`.
    pub fn from_config(config: &Config) -> Option<Self> {
        let banner = config.channels.banner.as_ref()?;
        if banner.transport != BannerTransport::Files {
            return None;
        }
        Some(Self {
            database: config.general.database.clone(),
            output_dir: banner.output_dir.clone(),
            public_url: banner.public_url.as_ref().map(|u| {
                if u.ends_with('/') {
                    u.clone()
                } else {
                    format!("{u}/")
                }
            }),
            sender: config.general.sender.clone(),
            sender_id: config.general.sender_id.clone(),
            timezone: config.general.timezone,
            default_language: config.general.default_language.clone(),
            zones: config.zones.clone(),
        })
    }

    /// URL of an alert's CAP file: absolute with `public_url`, else relative
    /// to the output directory.
    pub fn cap_url(&self, id: &str) -> String {
        format!("{}cap/{id}.xml", self.public_url.as_deref().unwrap_or(""))
    }

    /// A time as CAP and Atom want it: local offset, no fraction, no `Z`.
    pub fn time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.timezone)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    /// Writes every public file from the ledger's live alerts.
    pub fn publish(&self) -> Result<Snapshot, WebError> {
        let _lock = self.lock()?;
        let snapshot = self.snapshot()?;
        self.write_all(&snapshot)?;
        Ok(snapshot)
    }

    /// Publishes only when the set of live alerts changed since the last
    /// publication (an alert expired, was cancelled or replaced): one
    /// query and one small file read when nothing did.
    pub fn refresh(&self) -> Result<bool, WebError> {
        let _lock = self.lock()?;
        let snapshot = self.snapshot()?;
        let previous = std::fs::read_to_string(self.output_dir.join(STATE_FILE)).ok();
        let complete = self.output_dir.join("banner.json").exists()
            && self.output_dir.join("feed.atom").exists();
        if complete && previous.as_deref() == Some(snapshot.fingerprint().as_str()) {
            return Ok(false);
        }
        self.write_all(&snapshot)?;
        Ok(true)
    }

    /// Serialises publishers across processes (two alerts sent at once):
    /// without it, an older snapshot could be renamed over a newer one.
    /// Released when the returned file is dropped.
    fn lock(&self) -> Result<std::fs::File, WebError> {
        make_dir(&self.output_dir)?;
        let path = self.output_dir.join(".lock");
        let io = |source| WebError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(file)
    }

    fn snapshot(&self) -> Result<Snapshot, WebError> {
        let db_err = |source| WebError::Db {
            path: self.database.to_string(),
            source,
        };
        match Ledger::open_existing_read_only(&self.database).map_err(db_err)? {
            None => Ok(Snapshot::default()),
            Some(ledger) => load(&ledger).map_err(db_err),
        }
    }

    fn write_all(&self, s: &Snapshot) -> Result<(), WebError> {
        let dir = &self.output_dir;
        make_dir(dir)?;
        make_dir(&dir.join("cap"))?;
        let now = Utc::now();
        for alert in &s.alerts {
            let xml = cap::render(self, alert, &s.sent_of);
            write_if_changed(&dir.join("cap").join(format!("{}.xml", alert.id)), &xml)?;
        }
        let public: Vec<&LiveAlert> = s.alerts.iter().filter(|a| a.on_public_banner()).collect();
        let drill: Vec<&LiveAlert> = s.alerts.iter().filter(|a| a.on_drill_banner()).collect();
        let feed: Vec<&LiveAlert> = s.alerts.iter().filter(|a| a.in_feed()).collect();
        write_atomic(&dir.join("banner.json"), &banner::json(self, &public, now))?;
        write_atomic(
            &dir.join("banner.html"),
            &banner::html(self, &public, false),
        )?;
        write_atomic(
            &dir.join("drill-banner.json"),
            &banner::json(self, &drill, now),
        )?;
        write_atomic(
            &dir.join("drill-banner.html"),
            &banner::html(self, &drill, true),
        )?;
        write_atomic(&dir.join("feed.atom"), &atom::render(self, &feed, now))?;
        write_if_changed(&dir.join("allerta-banner.js"), WIDGET)?;
        write_atomic(&dir.join(STATE_FILE), &s.fingerprint())?;
        Ok(())
    }
}

/// Called at the start of every command: drops expired (or otherwise
/// ended) alerts from the public files. Never fails the command: a broken
/// web directory must not stop an officer from sending.
pub fn sweep(config: &Config) {
    let Some(site) = Site::from_config(config) else {
        return;
    };
    match site.refresh() {
        Ok(true) => {
            tracing::info!(dir = %site.output_dir.display(), "public banner files refreshed")
        }
        Ok(false) => {}
        Err(e) => tracing::warn!("could not refresh the public banner files: {e}"),
    }
}

/// One alert that is live on the web.
#[derive(Debug, Clone)]
pub struct LiveAlert {
    pub id: String,
    pub status: CapStatus,
    pub msg_type: MsgType,
    pub references: Vec<String>,
    pub audience: serde_json::Value,
    pub rendered: Rendered,
    pub sent: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
}

impl LiveAlert {
    fn on_public_banner(&self) -> bool {
        self.status == CapStatus::Actual && self.msg_type != MsgType::Cancel
    }

    fn on_drill_banner(&self) -> bool {
        self.status != CapStatus::Actual && self.msg_type != MsgType::Cancel
    }

    fn in_feed(&self) -> bool {
        self.status == CapStatus::Actual
    }

    fn severity_rank(&self) -> u8 {
        severity_rank(&self.rendered.meta.severity)
    }
}

pub fn severity_rank(severity: &str) -> u8 {
    match severity {
        "Extreme" => 4,
        "Severe" => 3,
        "Moderate" => 2,
        "Minor" => 1,
        _ => 0,
    }
}

/// The live alerts, most severe first, newest first on ties.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub alerts: Vec<LiveAlert>,
    /// `sent` time of every alert a live one references (CAP `references`).
    pub sent_of: HashMap<String, DateTime<Utc>>,
}

impl Snapshot {
    /// Which alert is in which file: changes exactly when a file's list does.
    pub fn fingerprint(&self) -> String {
        let ids = |f: fn(&LiveAlert) -> bool| {
            self.alerts
                .iter()
                .filter(|a| f(a))
                .map(|a| a.id.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "public={}\ndrill={}\nfeed={}\n",
            ids(LiveAlert::on_public_banner),
            ids(LiveAlert::on_drill_banner),
            ids(LiveAlert::in_feed)
        )
    }

    pub fn public_ids(&self) -> Vec<&str> {
        self.alerts
            .iter()
            .filter(|a| a.on_public_banner())
            .map(|a| a.id.as_str())
            .collect()
    }
}

/// The live alerts, most severe first, newest first on ties, and the
/// `sent` time of every alert they reference.
fn load(ledger: &Ledger) -> Result<Snapshot, LedgerError> {
    let now = Utc::now();
    let mut alerts = Vec::new();
    for a in ledger.published_alerts()? {
        let Ok(rendered) = Rendered::deserialize(&a.rendered) else {
            tracing::warn!(alert = %a.id, "alert row is unreadable: left off the web");
            continue;
        };
        if a.expires.is_some_and(|e| e <= now) {
            continue;
        }
        alerts.push(LiveAlert {
            id: a.id,
            status: a.status,
            msg_type: a.msg_type,
            references: a.references,
            audience: a.audience,
            rendered,
            sent: a.sent,
            expires: a.expires,
        });
    }
    alerts.sort_by(|a, b| {
        b.severity_rank()
            .cmp(&a.severity_rank())
            .then(b.sent.cmp(&a.sent))
    });
    let sent_of = ledger.sent_times(
        alerts
            .iter()
            .flat_map(|a| a.references.iter().map(String::as_str)),
    )?;
    Ok(Snapshot { alerts, sent_of })
}

/// The areas of an alert: one per zone of a zone-only audience; the whole
/// comune (no polygon) when the audience is `all` or names groups, which
/// may live anywhere.
pub struct Area<'a> {
    pub desc: String,
    pub zone: Option<&'a Zone>,
}

pub fn areas<'a>(site: &'a Site, audience: &serde_json::Value) -> Vec<Area<'a>> {
    let selectors = audience
        .get("selectors")
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    let mut zones = Vec::new();
    let mut whole = selectors.is_empty();
    for s in &selectors {
        match (
            s.get("kind").and_then(|k| k.as_str()),
            s.get("id").and_then(|k| k.as_str()),
        ) {
            (Some("zone"), Some(id)) => zones.push(id.to_owned()),
            _ => whole = true,
        }
    }
    if whole {
        return vec![Area {
            desc: comune_name(&site.sender),
            zone: None,
        }];
    }
    zones
        .into_iter()
        .map(|id| match site.zones.get(&ZoneId::declared(&id)) {
            Some(z) => Area {
                desc: z.name.clone(),
                zone: Some(z),
            },
            None => Area {
                desc: id,
                zone: None,
            },
        })
        .collect()
}

/// "Comune di X - Protezione Civile" → "Comune di X".
fn comune_name(sender: &str) -> String {
    sender
        .split(" - ")
        .next()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(sender)
        .to_owned()
}

fn make_dir(dir: &Path) -> Result<(), WebError> {
    let io = |source| WebError::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(io)
}

/// Temp file in the same directory, fsync, mode 0644, rename: a reader sees
/// the old file or the new one, never half of one.
fn write_atomic(path: &Path, content: &str) -> Result<(), WebError> {
    let io = |source| WebError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

fn write_if_changed(path: &Path, content: &str) -> Result<(), WebError> {
    match std::fs::read(path) {
        Ok(old) if old == content.as_bytes() => Ok(()),
        _ => write_atomic(path, content),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permission_error_names_the_owner_of_the_file_or_its_directory() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let missing = dir.path().join(".lock");
        let e = WebError::Io {
            path: missing,
            source: denied,
        }
        .to_string();
        let uid = std::fs::metadata(dir.path()).unwrap().uid();
        assert!(e.contains(&format!("owned by uid {uid}")), "{e}");
        assert!(e.contains("chown"), "{e}");
        let other = WebError::Io {
            path: dir.path().to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
        .to_string();
        assert!(!other.contains("owned by"), "{other}");
    }

    #[test]
    fn an_unreadable_database_is_named_once_with_what_sqlite_said() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("allerta.db");
        std::fs::write(
            &database,
            "not a database, just text long enough to be read",
        )
        .unwrap();
        let site = Site {
            database: database.clone().into(),
            output_dir: dir.path().join("public"),
            public_url: None,
            sender: String::new(),
            sender_id: String::new(),
            timezone: chrono_tz::Europe::Rome,
            default_language: "it".into(),
            zones: BTreeMap::new(),
        };
        let e = site.publish().expect_err("not a database").to_string();
        assert_eq!(
            e,
            format!("database {}: file is not a database", database.display())
        );
    }

    #[test]
    fn the_comune_name_is_the_sender_before_the_office() {
        assert_eq!(
            comune_name("Comune di Montelupo Fiorentino - Protezione Civile"),
            "Comune di Montelupo Fiorentino"
        );
        assert_eq!(comune_name("Comune di Prova"), "Comune di Prova");
    }

    #[test]
    fn times_carry_the_local_offset_without_fraction_or_z() {
        let site = Site {
            database: PathBuf::new().into(),
            output_dir: PathBuf::new(),
            public_url: None,
            sender: String::new(),
            sender_id: String::new(),
            timezone: chrono_tz::Europe::Rome,
            default_language: "it".into(),
            zones: BTreeMap::new(),
        };
        let winter = crate::ledger::parse_utc("2026-11-26T21:00:00.123456+00:00").expect("time");
        assert_eq!(site.time(winter), "2026-11-26T22:00:00+01:00");
        let summer = crate::ledger::parse_utc("2026-07-01T10:00:00Z").expect("time");
        assert_eq!(site.time(summer), "2026-07-01T12:00:00+02:00");
    }

    #[test]
    fn severity_orders_extreme_first() {
        assert!(severity_rank("Extreme") > severity_rank("Severe"));
        assert!(severity_rank("Minor") > severity_rank("Unknown"));
    }
}
