//! The delivery ledger in SQLite (SPEC §7): one row per alert, one per
//! (alert, channel, address) delivery, one per attempt, and an audit trail.
//! WAL mode and a busy timeout let `status`, `serve` and `bot` work while
//! `send` runs. Schema changes are versioned migrations.

mod acks;
mod alerts;
mod audit;
mod chunks;
mod console;
mod drafts;
mod erasure;
mod escalation;
mod followup;
pub mod pg;
mod plan;
mod query;
mod queue;
mod registry;
mod reports;
mod social;
pub mod sql;
mod state;
mod subscribers;
#[cfg(test)]
mod test_support;
mod voice;
mod web;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use sql::Conn;

pub use acks::Ack;
pub use alerts::{AlertState, Halt};
pub use audit::{AuditRow, Break};
pub use chunks::{Chunk, Hold};
pub use console::{Failures, Tried, Unreached, ZoneReach};
pub use drafts::{DraftRow, DraftState, NewDraft};
pub use erasure::{ChatDelivery, Erased};
pub use escalation::{EscalationSummary, Released};
pub use followup::FollowUp;
pub use plan::{NewAlert, Planner};
pub use query::{AlertRow, ChannelCounts, DeliveryRow};
pub use queue::{Backlog, Claimed, Outcome, Record};
pub use registry::{AudienceFilter, RegistryContact};
pub use reports::{Effect, Lookup, Report, ReportState};
pub use social::SocialThread;
pub use state::DeliveryState;
pub use subscribers::{ActiveSubscriber, Subscriber};
pub use voice::{
    CallEffect, CallPolicy, CallRow, CallTarget, is_final_status as is_final_call_status,
};
pub use web::{PublishedAlert, parse_utc};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("database: {0}")]
    Sql(#[from] sql::SqlError),
    #[error("{0}")]
    Postgres(#[from] pg::PgError),
    #[error("unknown alert `{0}`")]
    UnknownAlert(String),
    #[error("no alert has been sent yet")]
    NoAlerts,
    #[error("unknown draft `{0}` (see `allerta drafts list`)")]
    UnknownDraft(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_alert_layer.sql"),
    include_str!("migrations/003_drafts.sql"),
    include_str!("migrations/004_registry.sql"),
    include_str!("migrations/005_plan_chunks.sql"),
    include_str!("migrations/006_voice.sql"),
    include_str!("migrations/007_delivery_leases.sql"),
    include_str!("migrations/008_rate_slots.sql"),
];

/// The schema version a fully migrated database has (`user_version`).
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e.into())
    }
}

impl LedgerError {
    /// The database went away (a network, a server restarting, a standby
    /// being promoted), as opposed to refusing what was asked.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::Sql(e) if e.is_connection_lost())
    }
}

/// Where the ledger is (`general.database`): a SQLite file, or a
/// PostgreSQL database (SPEC §18).
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(pg::PgOptions),
}

impl Database {
    /// The SQLite file, if that is the backend.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(p) => Some(p),
            Self::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

impl std::fmt::Display for Database {
    /// The file, or the PostgreSQL URL's hosts and database (never its
    /// password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "{}", p.display()),
            Self::Postgres(o) => f.write_str(&o.redacted()),
        }
    }
}

impl From<&Path> for Database {
    fn from(p: &Path) -> Self {
        Self::Sqlite(p.to_owned())
    }
}

impl From<&PathBuf> for Database {
    fn from(p: &PathBuf) -> Self {
        Self::Sqlite(p.clone())
    }
}

impl From<PathBuf> for Database {
    fn from(p: PathBuf) -> Self {
        Self::Sqlite(p)
    }
}

impl From<&Database> for Database {
    fn from(d: &Database) -> Self {
        d.clone()
    }
}

pub struct Ledger {
    conn: Conn,
    /// How long a claim holds a delivery on PostgreSQL (`[general] lease`).
    delivery_lease: Duration,
}

/// Milliseconds since the Unix epoch: the ledger's clock for deliveries.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Creates the database file `0660` if it does not exist yet, whatever the
/// umask (SPEC §11, §13: shared by the office's OS users through a group,
/// never world-readable). SQLite gives its `-wal` and `-shm` files the
/// database file's mode. An existing file keeps the mode it has. Failing
/// here is left to `Connection::open`, which reports it.
fn create_shared(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(file) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o660)
        .open(path)
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o660));
    }
}

impl Ledger {
    /// Opens (creating if needed) and migrates the database.
    pub fn open(database: impl Into<Database>) -> Result<Self, LedgerError> {
        match database.into() {
            Database::Sqlite(path) => Self::open_sqlite(&path),
            Database::Postgres(options) => {
                let mut ledger = Self {
                    conn: Conn::postgres(sql::PgConn::open(&options)?),
                    delivery_lease: options.lease,
                };
                ledger.chain_legacy_audit_rows()?;
                Ok(ledger)
            }
        }
    }

    fn open_sqlite(path: &Path) -> Result<Self, LedgerError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o770)
                .create(dir);
        }
        let open_err = |source| LedgerError::Open {
            path: path.display().to_string(),
            source,
        };
        create_shared(path);
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "SQLite did not switch to WAL mode");
        }
        // FULL: every commit is on disk (fsync of the WAL) before it
        // returns, so a power cut never undoes a plan whose messages have
        // left (SPEC §11). The engine's writer thread switches its own
        // connection to NORMAL for the batched outcomes (`Ledger::batched`).
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        // Schema changes first, with foreign keys off (SQLite's procedure
        // for rebuilding a table), then the constraints for normal work.
        Migrations::new(MIGRATIONS.iter().map(|m| M::up(m)).collect()).to_latest(&mut conn)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        // Freed space inside pages is zeroed when it costs no extra I/O: an
        // old version of a row (an address before an erasure anonymised
        // it) must not linger in the file (SPEC §9 erasure).
        conn.pragma_update(None, "secure_delete", "FAST")
            .map_err(open_err)?;
        let mut ledger = Self {
            conn: Conn::sqlite(conn),
            delivery_lease: Duration::from_secs(30),
        };
        ledger.chain_legacy_audit_rows()?;
        Ok(ledger)
    }

    /// Outcomes of deliveries may stay batched (SPEC §11): only an OS crash
    /// loses the last ones, and `resume` re-sends those (a duplicate, never
    /// a loss). Used by the engine's writer thread.
    pub fn batched(self) -> Result<Self, LedgerError> {
        if let Some(c) = self.conn.as_sqlite() {
            c.pragma_update(None, "synchronous", "NORMAL")?;
        }
        Ok(self)
    }

    /// Whether the ledger is on PostgreSQL (several workers per alert).
    pub fn is_postgres(&self) -> bool {
        self.conn.is_postgres()
    }

    /// Opens an existing database read-only, or `None` if it does not exist
    /// (for `--dry-run`, which must write nothing).
    /// On PostgreSQL, `None` while the database has no schema yet (nothing
    /// was ever sent: a dry run creates no tables); else it is opened as
    /// usual, and nothing a read does writes.
    pub fn open_existing_read_only(
        database: impl Into<Database>,
    ) -> Result<Option<Self>, LedgerError> {
        let path = match database.into() {
            Database::Sqlite(path) => path,
            Database::Postgres(options) => {
                if sql::PgConn::probe(&options)? == 0 {
                    return Ok(None);
                }
                return Self::open(Database::Postgres(options)).map(Some);
            }
        };
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| LedgerError::Open {
            path: path.display().to_string(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(10))?;
        Ok(Some(Self {
            conn: Conn::sqlite(conn),
            delivery_lease: Duration::from_secs(30),
        }))
    }

    /// Reads the database for real (a table of the schema, not `SELECT 1`,
    /// which works even on a missing or unreadable file): `serve`'s health
    /// check.
    pub fn check_readable(&self) -> Result<(), LedgerError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get::<_, i64>(0))?;
        Ok(())
    }

    /// For the ledger's own unit tests, which set up and inspect rows
    /// directly; nothing outside the ledger touches its connection.
    #[cfg(test)]
    fn conn(&self) -> &Conn {
        &self.conn
    }
}

/// `host:pid` of this process, the owner name of leases it takes.
pub fn lease_owner() -> String {
    format!("{}:{}", crate::hostname(), std::process::id())
}

fn lease_holder_alive(holder: &str) -> bool {
    match holder.rsplit_once(':') {
        Some((host, pid)) if host == crate::hostname() => Path::new("/proc").join(pid).exists(),
        // Another host: trust the expiry time alone.
        _ => true,
    }
}
