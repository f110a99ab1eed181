//! The ledger's PostgreSQL connection against a real cluster (SPEC §18):
//! migrations, the password, several hosts, read-write sessions only. The
//! schema itself is held to SQLite's by tests/pg_schema.rs; what the ledger
//! does on PostgreSQL by tests/pg_ledger.rs and tests/contract.rs.

#[path = "common/pg.rs"]
mod pg;

use std::time::Duration;

use allerta::ledger::pg::{PgError, PgOptions, SCHEMA_VERSION};
use allerta::ledger::{Database, Ledger, LedgerError};

/// A cluster, or `None` when PostgreSQL is missing outside CI.
macro_rules! cluster {
    () => {
        match pg::Cluster::start() {
            Some(c) => c,
            None => return,
        }
    };
}

fn options(cluster: &pg::Cluster, lease: Duration) -> PgOptions {
    let mut o = PgOptions::new(cluster.url());
    o.password = Some(pg::PASSWORD.into());
    o.lease = lease;
    o
}

/// Opens the ledger (connecting and migrating) on a thread of its own, as
/// the binary does from synchronous code.
async fn open_with(o: &PgOptions) -> Result<Ledger, LedgerError> {
    let o = o.clone();
    tokio::task::spawn_blocking(move || Ledger::open(Database::Postgres(o)))
        .await
        .expect("join")
}

async fn open(cluster: &pg::Cluster, lease: Duration) -> Ledger {
    open_with(&options(cluster, lease))
        .await
        .expect("open the PostgreSQL ledger")
}

async fn schema_version(c: &tokio_postgres::Client) -> i32 {
    c.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .expect("version")
        .get(0)
}

/// A plain client for inspecting rows as the tests see them.
async fn raw(cluster: &pg::Cluster) -> tokio_postgres::Client {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_when_processes_start_together() {
    let cluster = cluster!();
    let o = options(&cluster, Duration::from_secs(30));
    let (a, b) = tokio::join!(open_with(&o), open_with(&o));
    let (_a, _b) = (a.expect("first"), b.expect("second"));
    let c = raw(&cluster).await;
    assert_eq!(schema_version(&c).await, SCHEMA_VERSION);
    let versions: Vec<i32> = c
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .await
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    // Reopening migrates nothing more; a newer schema is refused by name.
    open(&cluster, Duration::from_secs(30)).await;
    c.execute(
        "INSERT INTO schema_version (version, name) VALUES ($1, 'future')",
        &[&(SCHEMA_VERSION + 1)],
    )
    .await
    .expect("future version");
    let err = open_with(&o).await.err().expect("newer schema refused");
    assert!(
        matches!(err, LedgerError::Postgres(PgError::SchemaTooNew { found, known }) if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
        "{err}"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_password_is_refused_with_a_clear_error() {
    let cluster = cluster!();
    let mut o = options(&cluster, Duration::from_secs(30));
    o.password = Some("not the password".into());
    let err = open_with(&o).await.err().expect("wrong password");
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
    o.password = None;
    let err = open_with(&o).await.err().expect("no password");
    assert!(err.to_string().contains("password"), "{err}");
}

#[tokio::test]
async fn a_host_that_is_down_is_skipped_for_the_next_one() {
    let cluster = cluster!();
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut o = options(&cluster, Duration::from_secs(30));
    o.url = format!(
        "postgres://{u}@127.0.0.1:{down},127.0.0.1:{up}/{u}?sslmode=disable&target_session_attrs=read-write",
        u = pg::USER,
        up = cluster.port
    );
    let l = open_with(&o).await.expect("second host");
    assert!(l.is_postgres());
    assert_eq!(schema_version(&raw(&cluster).await).await, SCHEMA_VERSION);
}

/// A URL listing `hosts` (ports on 127.0.0.1) in order, for primaries only.
fn read_write_url(ports: &[u16]) -> String {
    let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    format!(
        "postgres://{u}@{}/{u}?sslmode=disable&target_session_attrs=read-write",
        hosts.join(","),
        u = pg::USER
    )
}

#[tokio::test]
async fn read_write_sessions_skip_a_standby_for_the_primary() {
    let primary = cluster!();
    let c = raw(&primary).await;
    let standby = primary.standby();
    // Listed first, the standby is skipped: it is read-only.
    let mut o = options(&primary, Duration::from_secs(30));
    o.url = read_write_url(&[standby.port, primary.port]);
    let _l = open_with(&o)
        .await
        .expect("the primary, second in the list");
    // Opening migrated the schema: writes only a primary takes.
    assert_eq!(schema_version(&c).await, SCHEMA_VERSION);
    let n: i64 = c
        .query_one("SELECT COUNT(*) FROM schema_version", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, i64::from(SCHEMA_VERSION), "migrated on the primary");
    // Without the attribute, the first host is taken, and it cannot be
    // written (opening migrates): why the URL needs it.
    o.url = format!(
        "postgres://{u}@127.0.0.1:{},127.0.0.1:{}/{u}?sslmode=disable",
        standby.port,
        primary.port,
        u = pg::USER
    );
    let err = open_with(&o).await.err().expect("the standby is read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
}
