//! Versioned migrations for PostgreSQL. Version N has the same tables as
//! SQLite's `user_version` N: migration N here is the counterpart of
//! SQLite's migration N (`src/ledger/migrations`), column for column.
//! `schema_version` (PostgreSQL only) has one row per
//! migration applied. All pending migrations run in one transaction under
//! an advisory lock: processes starting together migrate once, and a
//! failed migration leaves the schema as it was (PostgreSQL's DDL is
//! transactional).

use tokio_postgres::Client;

use super::PgError;

const MIGRATIONS: &[(&str, &str)] = &[
    ("initial", include_str!("migrations/001_initial.sql")),
    (
        "alert layer",
        include_str!("migrations/002_alert_layer.sql"),
    ),
    ("drafts", include_str!("migrations/003_drafts.sql")),
    ("registry", include_str!("migrations/004_registry.sql")),
    (
        "plan chunks",
        include_str!("migrations/005_plan_chunks.sql"),
    ),
    ("voice", include_str!("migrations/006_voice.sql")),
    (
        "delivery leases",
        include_str!("migrations/007_delivery_leases.sql"),
    ),
    ("rate slots", include_str!("migrations/008_rate_slots.sql")),
];

/// The schema version a fully migrated database has.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Key of the advisory lock held while migrating ("allerta" in ASCII).
const LOCK: i64 = 0x0061_6c6c_6572_7461;

pub(super) async fn to_latest(client: &mut Client) -> Result<(), PgError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version     integer PRIMARY KEY,
             name        text NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(PgError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
            &[&version, name],
        )
        .await?;
        tracing::info!(version, name, "database migrated");
    }
    tx.commit().await?;
    Ok(())
}
