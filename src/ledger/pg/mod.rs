//! The ledger on PostgreSQL (SPEC §18), groundwork for issue 17: the
//! schema as versioned migrations that mirror SQLite's column for column
//! (the same number is the same change, every column stored in the type
//! SQLite code binds and reads: see `migrations/001_initial.sql`), and a
//! connection from a `postgres://` URL (password, several hosts,
//! read-write sessions only). `tests/pg_schema.rs` holds both schemas to
//! each other.

mod connect;
mod migrate;

pub use connect::{PgOptions, resolve_password};
pub use migrate::SCHEMA_VERSION;

use std::time::Duration;

use deadpool_postgres::Pool;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("general.database: {0}")]
    Config(String),
    #[error("database password: {0}")]
    Password(String),
    #[error("database TLS setup: {0}")]
    Tls(String),
    #[error("database: {}", describe(.0))]
    Sql(#[from] tokio_postgres::Error),
    #[error("database connection: {}", describe_pool(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(
        "the database's schema is version {found}, newer than this allerta knows ({known}): \
         upgrade allerta"
    )]
    SchemaTooNew { found: i32, known: i32 },
}

/// The server's own words when it sent an error (tokio-postgres displays
/// only "db error"), else the error and its causes.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn describe_pool(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => describe(e),
        other => other.to_string(),
    }
}

/// The client configuration for `options` (the URL, password, timeouts).
pub(crate) fn client_config(options: &PgOptions) -> Result<tokio_postgres::Config, PgError> {
    connect::config(options)
}

/// The rustls connector for `options`.
pub(crate) fn tls_connector(
    options: &PgOptions,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
    connect::tls(options.ca_file.as_deref())
}

/// Migrates the schema to [`SCHEMA_VERSION`] (once, under an advisory lock).
pub(crate) async fn migrate_to_latest(client: &mut tokio_postgres::Client) -> Result<(), PgError> {
    migrate::to_latest(client).await
}

/// The ledger in a PostgreSQL database: a pool of connections (each made
/// with the URL's hosts in order and, for `target_session_attrs=read-write`,
/// only to a primary) and the lease a claim takes.
#[derive(Clone)]
pub struct PgLedger {
    pool: Pool,
    lease: Duration,
}

impl PgLedger {
    /// Connects and migrates the schema to [`SCHEMA_VERSION`] (several
    /// processes starting at once migrate it once: an advisory lock).
    pub async fn open(options: &PgOptions) -> Result<Self, PgError> {
        let pool = connect::pool(options)?;
        let ledger = Self {
            pool,
            lease: options.lease,
        };
        let mut client = ledger.pool.get().await?;
        migrate::to_latest(&mut client).await?;
        Ok(ledger)
    }

    /// How long a claim is held before another worker may take it over.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The schema version the database has.
    pub async fn schema_version(&self) -> Result<i32, PgError> {
        let client = self.pool.get().await?;
        migrate::current(&client).await
    }
}
