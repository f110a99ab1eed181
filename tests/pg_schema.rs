//! The PostgreSQL schema mirrors SQLite's, column for column (SPEC §18,
//! issue 17): the one ledger code binds and reads both with the same SQL
//! and the same Rust types, so every table, column (type class, NOT NULL,
//! default), key, UNIQUE constraint, foreign key and index SQLite's
//! migrations make, PostgreSQL's make too, in the type SQLite code binds
//! (INTEGER → bigint, TEXT → text COLLATE "C", REAL → double precision,
//! BLOB → bytea), plus an explicit `rowid` where the code orders by
//! SQLite's implicit one. Both are built by the crate's own migrations.

#[path = "common/pg.rs"]
mod pg;
#[path = "common/schema.rs"]
mod schema;

use allerta::ledger::Ledger;
use allerta::ledger::pg::PgOptions;

/// A cluster, or `None` when PostgreSQL is missing outside CI.
macro_rules! cluster {
    () => {
        match pg::Cluster::start() {
            Some(c) => c,
            None => return,
        }
    };
}

/// A SQLite ledger as `Ledger::open` migrates it, opened again plainly to
/// read its schema.
fn sqlite_ledger(dir: &tempfile::TempDir) -> rusqlite::Connection {
    let path = dir.path().join("ledger.db");
    drop(Ledger::open(&path).expect("open the SQLite ledger"));
    rusqlite::Connection::open(&path).expect("reopen the SQLite ledger")
}

/// A PostgreSQL database migrated by `Ledger::open`, and a plain client
/// to read its catalog.
async fn pg_ledger(cluster: &pg::Cluster) -> tokio_postgres::Client {
    let mut options = PgOptions::new(cluster.url());
    options.password = Some(pg::PASSWORD.into());
    tokio::task::spawn_blocking(move || {
        drop(
            Ledger::open(allerta::ledger::Database::Postgres(options))
                .expect("open the PostgreSQL ledger"),
        )
    })
    .await
    .expect("join");
    let url = format!(
        "postgres://{}:{}@127.0.0.1:{}/{}",
        pg::USER,
        "s3cret%20pass",
        cluster.port,
        pg::USER
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("raw connect");
    tokio::spawn(conn);
    client
}

#[test]
fn both_backends_have_the_same_number_of_migrations() {
    assert_eq!(
        allerta::ledger::pg::SCHEMA_VERSION as usize,
        allerta::ledger::SCHEMA_VERSION,
        "migration N on PostgreSQL is the counterpart of SQLite's migration N"
    );
}

#[tokio::test]
async fn the_postgresql_schema_is_the_sqlite_schema_column_for_column() {
    let cluster = cluster!();
    let dir = tempfile::tempdir().expect("temp dir");
    let lite = schema::sqlite(&sqlite_ledger(&dir)).expect("SQLite schema");
    let pg = schema::postgres(&pg_ledger(&cluster).await)
        .await
        .expect("PostgreSQL schema");
    // The comparison has something to compare: the final schema's tables
    // and a sample of what they hold.
    for table in [
        "alerts",
        "deliveries",
        "attempts",
        "voice_calls",
        "registry_zones",
    ] {
        assert!(lite.contains_key(table), "SQLite has no table {table}");
    }
    assert!(lite["deliveries"].columns.contains_key("lease_until"));
    assert!(lite["deliveries"].indexes.contains_key("deliveries_leases"));
    assert!(lite["registry_addresses"].foreign_keys.len() == 1);
    assert_eq!(
        lite["alerts"].checks.len(),
        3,
        "{:?}",
        lite["alerts"].checks
    );
    let differences = schema::differences(&lite, &pg);
    assert!(
        differences.is_empty(),
        "PostgreSQL's schema is not SQLite's:\n  {}",
        differences.join("\n  ")
    );
}

/// A drift made on one side, and what the comparison must say of it.
struct Drift {
    sql: &'static str,
    says: &'static str,
}

const PG_DRIFTS: &[Drift] = &[
    Drift {
        sql: "ALTER TABLE deliveries ADD COLUMN extra bigint",
        says: "deliveries.extra: only in PostgreSQL",
    },
    Drift {
        sql: "ALTER TABLE deliveries ALTER COLUMN attempts TYPE integer",
        says: "deliveries.attempts: SQLite INTEGER is PostgreSQL bigint, found integer",
    },
    Drift {
        sql: "ALTER TABLE alerts ALTER COLUMN variables TYPE jsonb USING variables::jsonb",
        says: "alerts.variables: SQLite TEXT is PostgreSQL text, found jsonb",
    },
    Drift {
        sql: "ALTER TABLE drafts ALTER COLUMN source DROP NOT NULL",
        says: "drafts.source: NOT NULL on SQLite, nullable on PostgreSQL",
    },
    Drift {
        sql: "ALTER TABLE voice_calls ALTER COLUMN closed DROP DEFAULT",
        says: "voice_calls.closed: default",
    },
    Drift {
        sql: "ALTER TABLE subscribers ALTER COLUMN name TYPE text COLLATE \"POSIX\"",
        says: "subscribers.name: text without COLLATE \"C\"",
    },
    Drift {
        sql: "ALTER TABLE alerts DROP COLUMN rowid",
        says: "alerts.rowid: missing on PostgreSQL",
    },
    Drift {
        sql: "ALTER TABLE attempts ALTER COLUMN id DROP IDENTITY",
        says: "attempts.id: identity None on PostgreSQL",
    },
    Drift {
        sql: "ALTER TABLE deliveries DROP CONSTRAINT deliveries_alert_id_channel_address_key",
        says: "deliveries(alert_id, channel, address): UNIQUE only in SQLite",
    },
    Drift {
        sql: "ALTER TABLE attempts DROP CONSTRAINT attempts_delivery_id_fkey",
        says: "attempts.delivery_id: foreign key to deliveries.id only in SQLite",
    },
    Drift {
        sql: "DROP INDEX deliveries_leases; CREATE INDEX deliveries_leases
              ON deliveries (alert_id, channel, lease_until) WHERE state = 'pending'",
        says: "deliveries(alert_id, channel, lease_until): index deliveries_leases is",
    },
    Drift {
        sql: "DROP INDEX deliveries_held",
        says: "deliveries(alert_id, held_until): index deliveries_held only in SQLite",
    },
    Drift {
        sql: "ALTER TABLE alerts DROP CONSTRAINT alerts_state_check;
              ALTER TABLE alerts ADD CONSTRAINT alerts_state_check
              CHECK (state IN ('sending', 'paused', 'settled', 'cancelled', 'rejected'))",
        says: "alerts: CHECK ['awaiting_approval' 'cancelled' 'paused' 'rejected' 'sending' \
               'settled' state] only in SQLite",
    },
    Drift {
        sql: "ALTER TABLE registry_state DROP CONSTRAINT registry_state_single;
              ALTER TABLE registry_state ADD CONSTRAINT registry_state_single CHECK (id >= 1)",
        says: "registry_state: CHECK [1 = id] only in SQLite",
    },
    Drift {
        sql: "CREATE TABLE stray (x bigint)",
        says: "table stray: only in PostgreSQL",
    },
];

const SQLITE_DRIFTS: &[Drift] = &[
    Drift {
        sql: "ALTER TABLE registry_problems ADD COLUMN extra TEXT",
        says: "registry_problems.extra: only in SQLite",
    },
    Drift {
        sql: "ALTER TABLE voice_calls ADD COLUMN price NUMERIC",
        says: "voice_calls.price: SQLite declares `NUMERIC`",
    },
    Drift {
        sql: "ALTER TABLE drafts ADD COLUMN rank INTEGER CHECK (rank <> 0)",
        says: "drafts: CHECK [0 <> rank] only in SQLite",
    },
    Drift {
        sql: "CREATE UNIQUE INDEX drafts_one ON drafts (source, day)",
        says: "drafts(source, day): UNIQUE only in SQLite",
    },
];

fn assert_named(drift: &Drift, differences: &[String]) {
    assert!(
        differences.iter().any(|d| d.contains(drift.says)),
        "after `{}` the comparison should say `{}`, it says:\n  {}",
        drift.sql,
        drift.says,
        differences.join("\n  ")
    );
}

#[tokio::test]
async fn a_drift_on_either_side_is_named_by_table_and_column() {
    let cluster = cluster!();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut conn = sqlite_ledger(&dir);
    let lite = schema::sqlite(&conn).expect("SQLite schema");
    let mut client = pg_ledger(&cluster).await;
    let pg = schema::postgres(&client).await.expect("PostgreSQL schema");

    // Each drift in a transaction rolled back: DDL is transactional on both.
    for drift in PG_DRIFTS {
        let tx = client.transaction().await.expect("begin");
        tx.batch_execute(drift.sql).await.expect(drift.sql);
        let drifted = schema::postgres(&tx).await.expect("PostgreSQL schema");
        assert_named(drift, &schema::differences(&lite, &drifted));
        tx.rollback().await.expect("rollback");
    }
    for drift in SQLITE_DRIFTS {
        let tx = conn.transaction().expect("begin");
        tx.execute_batch(drift.sql).expect(drift.sql);
        let drifted = schema::sqlite(&tx).expect("SQLite schema");
        assert_named(drift, &schema::differences(&drifted, &pg));
        tx.rollback().expect("rollback");
    }
    // Rolled back: the schemas match again.
    let again = schema::postgres(&client).await.expect("PostgreSQL schema");
    assert_eq!(schema::differences(&lite, &again), Vec::<String>::new());
}

/// Column names SQLite takes that PostgreSQL's grammar also knows as
/// words (`row`, `text`, `at`) work in the ledger's SQL as SQLite writes
/// it, unquoted: the same text runs on both.
#[tokio::test]
async fn column_names_work_unquoted_in_the_ledgers_sql() {
    let cluster = cluster!();
    let client = pg_ledger(&cluster).await;
    let statements = [
        "INSERT INTO registry_contacts (row, contact_id, language) VALUES (1, 'c1', NULL)",
        "INSERT INTO registry_addresses (seq, row, channel, address) VALUES (1, 1, 'sms', '+39')",
        "INSERT INTO registry_zones (row, zone) VALUES (1, 'z') ON CONFLICT DO NOTHING",
        "INSERT INTO registry_groups (row, grp) VALUES (1, 'g') ON CONFLICT DO NOTHING",
        "INSERT INTO audit (at, operator, host, command) VALUES ('t', 'o', 'h', 'send')",
        "INSERT INTO drafts (source, subject, day, levels, template, variables, audience, text,
                            created_at, state)
         VALUES ('s', 'x', '2026-12-02', '{}', 't', '{}', '[]', 'testo', 't', 'pending')",
    ];
    for sql in statements {
        client.execute(sql, &[]).await.expect(sql);
    }
    let sql = "SELECT c.row, a.seq, c.contact_id FROM registry_addresses a
               JOIN registry_contacts c ON c.row = a.row
               WHERE EXISTS (SELECT 1 FROM registry_zones z WHERE z.zone = 'z' AND z.row = c.row)
                 AND EXISTS (SELECT 1 FROM registry_groups g WHERE g.grp = 'g' AND g.row = c.row)
               ORDER BY a.seq";
    let rows = client.query(sql, &[]).await.expect(sql);
    let got: Vec<(i64, i64, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(got, [(1, 1, "c1".to_owned())]);
    let sql = "SELECT a.at, d.text, d.day FROM audit a, drafts d WHERE d.state = 'pending'";
    let row = client.query_one(sql, &[]).await.expect(sql);
    let got: (String, String, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(got, ("t".into(), "testo".into(), "2026-12-02".into()));
}
