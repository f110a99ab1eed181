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
