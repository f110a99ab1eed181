//! The PostgreSQL ledger against a real cluster (SPEC §18): migrations,
//! connection (password, several hosts), the plan's transaction, and the
//! contract of per-delivery leases — two workers never claim the same
//! delivery, a dead worker's claims are taken over when its lease expires,
//! and a settle from a worker that no longer holds a delivery (taken over,
//! or already completed) changes nothing.

#[path = "common/pg.rs"]
mod pg;

use std::collections::HashSet;
use std::time::Duration;

use allerta::domain::{CapStatus, ChannelId, MsgType, Recipient};
use allerta::ledger::pg::{NewDelivery, PgError, PgLedger, PgOptions, SCHEMA_VERSION};
use allerta::ledger::{AlertState, Halt, NewAlert, Outcome, Record, now_ms};

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

async fn open(cluster: &pg::Cluster, lease: Duration) -> PgLedger {
    PgLedger::open(&options(cluster, lease))
        .await
        .expect("open the PostgreSQL ledger")
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

fn alert(id: &str) -> NewAlert {
    NewAlert {
        id: id.into(),
        idem_key: None,
        fingerprint: None,
        thread_id: id.into(),
        transports: serde_json::json!({"email": "outbox"}),
        state: AlertState::Sending,
        creator: "tester".into(),
        approval_deadline: None,
        template: "allerta-meteo".into(),
        variables: serde_json::json!({"livello": "rosso"}),
        status: CapStatus::Actual,
        msg_type: MsgType::Alert,
        references: vec![],
        audience: serde_json::json!({"all": true}),
        channels: vec![ChannelId::Email],
        rendered: serde_json::json!({}),
        headline: "Allerta rossa".into(),
        created_at: chrono::Utc::now().to_rfc3339(),
        expires_at: None,
        operator: "tester".into(),
        host: "test".into(),
    }
}

fn emails(n: usize) -> Vec<NewDelivery> {
    (1..=n)
        .map(|i| NewDelivery {
            channel: ChannelId::Email,
            address: format!("u{i}@example.it"),
            recipient: Recipient::Contact(format!("c{i}")),
            language: "it".into(),
            outside_drill: true,
        })
        .collect()
}

fn sent(id: i64, provider: &str) -> Record {
    Record {
        delivery_id: id,
        at_ms: now_ms(),
        outcome: Outcome::Sent {
            provider_id: Some(provider.into()),
        },
    }
}

async fn claim(l: &PgLedger, worker: &str, limit: usize) -> Vec<allerta::ledger::pg::Claim> {
    l.claim("a", worker, ChannelId::Email, limit)
        .await
        .expect("claim")
        .expect("the alert is sending")
}

/// (state, lease_owner, provider_id, attempts) of one delivery.
async fn row(c: &tokio_postgres::Client, id: i64) -> (String, Option<String>, Option<String>, i32) {
    let r = c
        .query_one(
            "SELECT state, lease_owner, provider_id, attempts FROM deliveries WHERE id = $1",
            &[&id],
        )
        .await
        .expect("delivery row");
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

async fn attempt_rows(c: &tokio_postgres::Client, id: i64) -> i64 {
    c.query_one(
        "SELECT COUNT(*) FROM attempts WHERE delivery_id = $1",
        &[&id],
    )
    .await
    .expect("count")
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_when_processes_start_together() {
    let cluster = cluster!();
    let o = options(&cluster, Duration::from_secs(30));
    let (a, b) = tokio::join!(PgLedger::open(&o), PgLedger::open(&o));
    let (a, _b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a.schema_version().await.expect("version"), SCHEMA_VERSION);
    let c = raw(&cluster).await;
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
    let err = PgLedger::open(&o)
        .await
        .err()
        .expect("newer schema refused");
    assert!(
        matches!(err, PgError::SchemaTooNew { found, known } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
        "{err}"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_password_is_refused_with_a_clear_error() {
    let cluster = cluster!();
    let mut o = options(&cluster, Duration::from_secs(30));
    o.password = Some("not the password".into());
    let err = PgLedger::open(&o).await.err().expect("wrong password");
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
    o.password = None;
    let err = PgLedger::open(&o).await.err().expect("no password");
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
    let l = PgLedger::open(&o).await.expect("second host");
    assert_eq!(l.schema_version().await.expect("version"), SCHEMA_VERSION);
}

#[tokio::test]
async fn a_plan_is_written_wholly_or_not_at_all() {
    let cluster = cluster!();
    let l = open(&cluster, Duration::from_secs(30)).await;
    let c = raw(&cluster).await;
    let mut rows = emails(2_500);
    rows.push(rows[0].clone()); // the same address twice: one delivery
    assert_eq!(l.plan(&alert("a"), &rows).await.expect("plan"), 2_500);
    // Planning the same alert again fails (its row exists) and adds no
    // delivery: the alert row and the deliveries are one transaction.
    let more: Vec<NewDelivery> = emails(2_600).split_off(2_500);
    assert!(l.plan(&alert("a"), &more).await.is_err());
    let count: i64 = c
        .query_one("SELECT COUNT(*) FROM deliveries", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 2_500);
    // A plan whose alert is bad writes nothing either.
    let mut bad = alert("b");
    bad.created_at = "yesterday".into();
    let err = l.plan(&bad, &more).await.expect_err("bad time");
    assert!(err.to_string().contains("created_at"), "{err}");
    let alerts: i64 = c
        .query_one("SELECT COUNT(*) FROM alerts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(alerts, 1);
    // Claimed in planning order.
    let first = claim(&l, "w", 3).await;
    let got: Vec<&str> = first.iter().map(|c| c.delivery.address.as_str()).collect();
    assert_eq!(got, ["u1@example.it", "u2@example.it", "u3@example.it"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_claiming_concurrently_never_get_the_same_delivery() {
    let cluster = cluster!();
    let l = open(&cluster, Duration::from_secs(30)).await;
    l.plan(&alert("a"), &emails(3_000)).await.expect("plan");
    let work = |worker: &'static str| {
        let l = l.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = claim(&l, worker, 25).await;
                if batch.is_empty() {
                    return mine;
                }
                let records: Vec<Record> =
                    batch.iter().map(|c| sent(c.delivery.id, worker)).collect();
                let settled = l.settle(worker, &records).await.expect("settle");
                assert!(settled.stale.is_empty(), "{worker}: {settled:?}");
                mine.extend(batch.into_iter().map(|c| c.delivery.id));
            }
        })
    };
    let (a, b) = (work("worker-a"), work("worker-b"));
    let (a, b) = (a.await.expect("a"), b.await.expect("b"));
    let (sa, sb): (HashSet<i64>, HashSet<i64>) =
        (a.iter().copied().collect(), b.iter().copied().collect());
    assert_eq!(sa.len() + sb.len(), 3_000, "a: {}, b: {}", a.len(), b.len());
    assert!(sa.is_disjoint(&sb), "a delivery claimed by both");
    assert!(!a.is_empty() && !b.is_empty(), "each did a share");
    let c = raw(&cluster).await;
    let r = c
        .query_one(
            "SELECT COUNT(*) FILTER (WHERE state = 'sent' AND attempts = 1 AND lease_owner IS NULL),
                    (SELECT COUNT(*) FROM attempts)
             FROM deliveries",
            &[],
        )
        .await
        .expect("counts");
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (3_000, 3_000));
    assert!(l.settle_if_done("a").await.expect("settle alert"));
}

#[tokio::test]
async fn a_dead_workers_claims_are_taken_over_when_its_lease_expires() {
    let cluster = cluster!();
    let lease = Duration::from_millis(500);
    let l = open(&cluster, lease).await;
    l.plan(&alert("a"), &emails(20)).await.expect("plan");
    let dead: HashSet<i64> = claim(&l, "dead", 10)
        .await
        .iter()
        .map(|c| c.delivery.id)
        .collect();
    // While the lease runs, the other worker gets only the rest.
    let rest = claim(&l, "alive", 100).await;
    assert_eq!(rest.len(), 10);
    assert!(rest.iter().all(|c| !dead.contains(&c.delivery.id)));
    assert!(rest.iter().all(|c| c.taken_over_from.is_none()));
    assert!(claim(&l, "alive", 100).await.is_empty());
    let backlog = l.unsettled("a", ChannelId::Email).await.expect("backlog");
    assert_eq!(backlog.left, 20);
    // Nothing is claimable before the first lease ends: that is when a
    // lane with nothing to claim should look again.
    let due = backlog.next_due.expect("a next due time");
    assert!(due > now_ms(), "due {due} is not in the future");
    assert!(due <= now_ms() + lease.as_millis() as i64, "due {due}");
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    // `alive` renewed nothing, so its own claims expired too: take-over is
    // by expiry, whoever held them. Only `dead`'s are checked here.
    let taken = claim(&l, "rescuer", 100).await;
    let taken_dead: Vec<_> = taken
        .iter()
        .filter(|c| dead.contains(&c.delivery.id))
        .collect();
    assert_eq!(taken_dead.len(), 10, "{taken:?}");
    assert!(
        taken_dead
            .iter()
            .all(|c| c.taken_over_from.as_deref() == Some("dead"))
    );
    let c = raw(&cluster).await;
    for t in &taken_dead {
        let (state, owner, _, attempts) = row(&c, t.delivery.id).await;
        assert_eq!(
            (state.as_str(), owner.as_deref(), attempts),
            ("sending", Some("rescuer"), 0)
        );
    }
}

#[tokio::test]
async fn renewing_a_lease_keeps_the_claim() {
    let cluster = cluster!();
    let lease = Duration::from_millis(600);
    let l = open(&cluster, lease).await;
    l.plan(&alert("a"), &emails(5)).await.expect("plan");
    assert_eq!(claim(&l, "slow", 5).await.len(), 5);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(l.renew("slow").await.expect("renew"), 5);
    }
    // 900 ms after the claim, longer than the lease: still held.
    assert!(claim(&l, "other", 5).await.is_empty());
}

#[tokio::test]
async fn a_late_settle_from_a_worker_whose_claim_was_taken_over_changes_nothing() {
    let cluster = cluster!();
    let lease = Duration::from_millis(300);
    let l = open(&cluster, lease).await;
    let c = raw(&cluster).await;
    l.plan(&alert("a"), &emails(1)).await.expect("plan");
    let id = claim(&l, "dead", 1).await[0].delivery.id;
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let taken = claim(&l, "rescuer", 1).await;
    assert_eq!(taken[0].taken_over_from.as_deref(), Some("dead"));

    // The old owner wakes up while the rescuer is sending: refused.
    let failed = Record {
        delivery_id: id,
        at_ms: now_ms(),
        outcome: Outcome::Failed {
            error: "late".into(),
        },
    };
    let s = l
        .settle("dead", std::slice::from_ref(&failed))
        .await
        .expect("settle");
    assert_eq!((s.applied, s.stale), (vec![], vec![id]));
    assert_eq!(
        row(&c, id).await,
        ("sending".into(), Some("rescuer".into()), None, 0)
    );

    // The rescuer completes it; the old owner's outcome still changes nothing.
    let s = l
        .settle("rescuer", &[sent(id, "r-1")])
        .await
        .expect("settle");
    assert_eq!(s.applied, vec![id]);
    let s = l
        .settle("dead", &[failed, sent(id, "d-1")])
        .await
        .expect("settle");
    // Each of its two outcomes is refused (stale is per record).
    assert_eq!((s.applied, s.stale), (vec![], vec![id, id]));
    assert_eq!(
        row(&c, id).await,
        ("sent".into(), None, Some("r-1".into()), 1)
    );
    assert_eq!(attempt_rows(&c, id).await, 1, "only the rescuer's attempt");
}

#[tokio::test]
async fn a_settle_after_completion_changes_nothing() {
    let cluster = cluster!();
    let l = open(&cluster, Duration::from_secs(30)).await;
    let c = raw(&cluster).await;
    l.plan(&alert("a"), &emails(2)).await.expect("plan");
    let ids: Vec<i64> = claim(&l, "w", 2)
        .await
        .iter()
        .map(|c| c.delivery.id)
        .collect();
    let s = l
        .settle("w", &[sent(ids[0], "p-1"), sent(ids[1], "p-2")])
        .await
        .expect("settle");
    assert_eq!(s.applied, ids);
    // A second outcome for the same deliveries (a retried batch, a rescue
    // that raced the completion): by the owner or anyone else, refused.
    let retry = Record {
        delivery_id: ids[0],
        at_ms: now_ms(),
        outcome: Outcome::Retry {
            at_ms: now_ms() + 1_000,
            error: "timeout".into(),
        },
    };
    let s = l.settle("w", &[retry]).await.expect("settle");
    assert_eq!(s.stale, vec![ids[0]]);
    let s = l
        .settle("other", &[sent(ids[1], "x")])
        .await
        .expect("settle");
    assert_eq!(s.stale, vec![ids[1]]);
    assert_eq!(
        row(&c, ids[0]).await,
        ("sent".into(), None, Some("p-1".into()), 1)
    );
    assert_eq!(
        row(&c, ids[1]).await,
        ("sent".into(), None, Some("p-2".into()), 1)
    );
    assert_eq!(attempt_rows(&c, ids[0]).await, 1);
    // Nothing left to claim, even after any lease would have expired.
    assert!(claim(&l, "other", 10).await.is_empty());
    assert!(l.settle_if_done("a").await.expect("settle alert"));
}

#[tokio::test]
async fn the_same_delivery_twice_in_one_batch_is_written_in_order() {
    let cluster = cluster!();
    let l = open(&cluster, Duration::from_secs(30)).await;
    let c = raw(&cluster).await;
    l.plan(&alert("a"), &emails(1)).await.expect("plan");
    let id = claim(&l, "w", 1).await[0].delivery.id;
    let released = Record {
        delivery_id: id,
        at_ms: now_ms(),
        outcome: Outcome::Released {
            reason: "shutting down".into(),
        },
    };
    // Released first (back to pending, no lease), then a stale Sent.
    let s = l
        .settle("w", &[released, sent(id, "p")])
        .await
        .expect("settle");
    assert_eq!((s.applied, s.stale), (vec![id], vec![id]));
    assert_eq!(row(&c, id).await, ("pending".into(), None, None, 0));
    // Released: claimable again at once, by anyone.
    assert_eq!(claim(&l, "other", 1).await[0].delivery.id, id);
}

#[tokio::test]
async fn a_claim_stops_when_the_alert_is_cancelled_or_paused() {
    let cluster = cluster!();
    let l = open(&cluster, Duration::from_secs(30)).await;
    let c = raw(&cluster).await;
    l.plan(&alert("a"), &emails(3)).await.expect("plan");
    assert_eq!(claim(&l, "w", 1).await.len(), 1);
    for (state, want) in [
        ("paused", AlertState::Paused),
        ("cancelled", AlertState::Cancelled),
    ] {
        c.execute("UPDATE alerts SET state = $1 WHERE id = 'a'", &[&state])
            .await
            .expect("state");
        let halt = l
            .claim("a", "w", ChannelId::Email, 10)
            .await
            .expect("claim");
        assert_eq!(halt.err(), Some(Halt::State(want)));
    }
    let err = l
        .claim("nope", "w", ChannelId::Email, 10)
        .await
        .expect_err("unknown alert");
    assert!(
        matches!(err, PgError::UnknownAlert(ref id) if id == "nope"),
        "{err}"
    );
}

#[tokio::test]
async fn a_retry_is_not_claimed_before_it_is_due_and_leaves_no_lease() {
    let cluster = cluster!();
    let l = open(&cluster, Duration::from_secs(30)).await;
    let c = raw(&cluster).await;
    l.plan(&alert("a"), &emails(1)).await.expect("plan");
    let id = claim(&l, "w", 1).await[0].delivery.id;
    let due = now_ms() + 400;
    let retry = Record {
        delivery_id: id,
        at_ms: now_ms(),
        outcome: Outcome::Retry {
            at_ms: due,
            error: "SMTP 451".into(),
        },
    };
    assert_eq!(
        l.settle("w", &[retry]).await.expect("settle").applied,
        vec![id]
    );
    assert_eq!(row(&c, id).await, ("pending".into(), None, None, 1));
    let backlog = l.unsettled("a", ChannelId::Email).await.expect("backlog");
    assert_eq!((backlog.left, backlog.next_due), (1, Some(due)));
    assert!(claim(&l, "other", 1).await.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = claim(&l, "other", 1).await;
    assert_eq!((again[0].delivery.id, again[0].delivery.attempts), (id, 1));
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

/// Waits until the primary reports a standby streaming synchronously.
async fn wait_for_sync_standby(c: &tokio_postgres::Client) {
    for _ in 0..100 {
        let n: i64 = c
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
                &[],
            )
            .await
            .expect("pg_stat_replication")
            .get(0);
        if n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no synchronous standby after 10 s");
}

#[tokio::test]
async fn read_write_sessions_skip_a_standby_for_the_primary() {
    let primary = cluster!();
    let c = raw(&primary).await;
    let standby = primary.standby();
    // Listed first, the standby is skipped: it is read-only.
    let mut o = options(&primary, Duration::from_secs(30));
    o.url = read_write_url(&[standby.port, primary.port]);
    let l = PgLedger::open(&o)
        .await
        .expect("the primary, second in the list");
    l.plan(&alert("a"), &emails(3)).await.expect("plan");
    let n: i64 = c
        .query_one("SELECT COUNT(*) FROM deliveries", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 3, "planned on the primary");
    // Without the attribute, the first host is taken, and it cannot be
    // written (opening migrates): why the URL needs it.
    o.url = format!(
        "postgres://{u}@127.0.0.1:{},127.0.0.1:{}/{u}?sslmode=disable",
        standby.port,
        primary.port,
        u = pg::USER
    );
    let err = PgLedger::open(&o)
        .await
        .err()
        .expect("the standby is read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
}

/// Calls `f` until it succeeds, as the engine retries the database after
/// a failover (SPEC §18: with backoff, for up to two minutes; here 20 s).
async fn retrying<T, F: std::future::Future<Output = Result<T, PgError>>>(
    mut f: impl FnMut() -> F,
) -> T {
    let mut last = None;
    for _ in 0..200 {
        match f().await {
            Ok(v) => return v,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the database did not come back: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promoting_a_synchronous_standby_mid_send_loses_no_planned_or_settled_delivery() {
    let mut primary = match pg::Cluster::start_with(&[
        ("synchronous_standby_names", "'*'"),
        ("synchronous_commit", "on"),
    ]) {
        Some(c) => c,
        None => return,
    };
    let standby = primary.standby();
    wait_for_sync_standby(&raw(&primary).await).await;
    let lease = Duration::from_millis(500);
    let mut o = options(&primary, lease);
    o.url = read_write_url(&[primary.port, standby.port]);
    let l = PgLedger::open(&o).await.expect("open");
    l.plan(&alert("a"), &emails(3_000)).await.expect("plan");

    // Worker `a` sends 1,000 and records them, then has 100 in flight
    // when the primary's site is lost.
    let mut settled = HashSet::new();
    while settled.len() < 1_000 {
        let batch = claim(&l, "a", 100).await;
        let records: Vec<Record> = batch.iter().map(|c| sent(c.delivery.id, "a")).collect();
        l.settle("a", &records).await.expect("settle");
        settled.extend(batch.iter().map(|c| c.delivery.id));
    }
    let in_flight: HashSet<i64> = claim(&l, "a", 100)
        .await
        .iter()
        .map(|c| c.delivery.id)
        .collect();
    primary.kill();
    standby.promote();

    // Worker `b`, through the same URL, finishes on the promoted standby.
    let mut b_sent = HashSet::new();
    let mut taken_over = HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(std::time::Instant::now() < deadline, "b never finished");
        let batch = retrying(|| l.claim("a", "b", ChannelId::Email, 200))
            .await
            .expect("sending");
        if batch.is_empty() {
            let left = retrying(|| l.unsettled("a", ChannelId::Email)).await.left;
            if left == 0 {
                break;
            }
            // In-flight claims of `a`: taken over when their lease expires.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let records: Vec<Record> = batch.iter().map(|c| sent(c.delivery.id, "b")).collect();
        let s = retrying(|| l.settle("b", &records)).await;
        assert!(s.stale.is_empty(), "{s:?}");
        for c in &batch {
            if c.taken_over_from.is_some() {
                taken_over.insert(c.delivery.id);
            }
            assert!(
                b_sent.insert(c.delivery.id),
                "b sent {} twice",
                c.delivery.id
            );
        }
    }
    assert!(
        settled.is_disjoint(&b_sent),
        "a settled delivery was sent again"
    );
    assert_eq!(
        settled.len() + b_sent.len(),
        3_000,
        "everyone planned was sent"
    );
    assert_eq!(
        taken_over, in_flight,
        "duplicates are exactly the sends in flight"
    );

    let c = raw(&standby).await;
    let r = c
        .query_one(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'sent'),
                    COUNT(*) FILTER (WHERE provider_id = 'a')
             FROM deliveries",
            &[],
        )
        .await
        .expect("counts");
    assert_eq!(
        (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2)),
        (3_000, 3_000, 1_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_queue_batches_outcomes_and_keeps_its_claims_while_sending() {
    use allerta::dispatch::Queue;
    use allerta::ledger::pg::PgQueue;

    let cluster = cluster!();
    let lease = Duration::from_millis(300);
    let l = open(&cluster, lease).await;
    let c = raw(&cluster).await;
    l.plan(&alert("a"), &emails(5)).await.expect("plan");
    c.execute(
        "INSERT INTO subscribers (chat_id, created_at, updated_at) VALUES ('42', now(), now())",
        &[],
    )
    .await
    .expect("subscriber");

    let queue = PgQueue::start(l.clone(), "a", "engine");
    let claimed = queue
        .claim(ChannelId::Email, 10)
        .await
        .expect("claim")
        .expect("sending");
    assert_eq!(claimed.len(), 5);
    // A slow send: more than twice the lease, renewed meanwhile.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(claim(&l, "other", 10).await.is_empty(), "claims kept");
    for d in &claimed {
        queue.record(sent(d.id, "engine"));
    }
    queue.deactivate_subscriber("42".into());
    queue.flush().await.expect("flush");
    let r = c
        .query_one(
            "SELECT COUNT(*) FILTER (WHERE state = 'sent' AND provider_id = 'engine'),
                    (SELECT active FROM subscribers WHERE chat_id = '42')
             FROM deliveries",
            &[],
        )
        .await
        .expect("rows");
    assert_eq!((r.get::<_, i64>(0), r.get::<_, bool>(1)), (5, false));
    let backlog = queue.unsettled(ChannelId::Email).await.expect("backlog");
    assert_eq!(backlog.left, 0);
    assert!(l.settle_if_done("a").await.expect("settle alert"));
}
