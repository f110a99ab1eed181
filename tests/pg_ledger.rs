//! The ledger's delivery queue and SQL layer on a real PostgreSQL cluster
//! (SPEC §18): several workers on one alert through per-delivery leases,
//! `FOR UPDATE SKIP LOCKED`, take-over of an expired claim, outcomes
//! written only by the worker that still holds the delivery, immediate
//! transactions serialised across connections, and a connection that
//! dies. The same behaviour through the binary: tests/contract.rs and
//! tests/postgres_cli.rs.

#[path = "common/pg.rs"]
mod pg;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use allerta::domain::{CapStatus, ChannelId, MsgType, Recipient};
use allerta::ledger::pg::PgOptions;
use allerta::ledger::sql::{Behavior, Conn, Numbered, PgConn, ToValue, params};
use allerta::ledger::{AlertState, Claimed, Database, Ledger, NewAlert, Outcome, Record, now_ms};

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

fn open(cluster: &pg::Cluster, lease: Duration) -> Ledger {
    Ledger::open(Database::Postgres(options(cluster, lease))).expect("open the ledger")
}

/// A plain connection of the SQL layer, to look at rows.
fn raw(cluster: &pg::Cluster) -> Conn {
    Conn::postgres(PgConn::open(&options(cluster, Duration::from_secs(30))).expect("connect"))
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

/// Alert `a` with `n` email deliveries.
fn plan(ledger: &mut Ledger, n: usize) {
    ledger
        .plan::<allerta::ledger::LedgerError>(&alert("a"), |p| {
            for i in 1..=n {
                p.add(
                    ChannelId::Email,
                    &format!("u{i}@example.it"),
                    &Recipient::Contact(format!("c{i}")),
                    "it",
                    true,
                )?;
            }
            Ok(())
        })
        .expect("plan");
}

fn claim(l: &mut Ledger, worker: &str, limit: usize) -> Vec<Claimed> {
    l.claim("a", worker, ChannelId::Email, limit)
        .expect("claim")
        .expect("the alert is sending")
}

fn sent(c: &Claimed, provider: &str) -> Record {
    Record {
        delivery_id: c.id,
        at_ms: now_ms(),
        outcome: Outcome::Sent {
            provider_id: Some(provider.into()),
        },
    }
}

/// (state, lease_owner, provider_id) of one delivery.
fn row(c: &Conn, id: i64) -> (String, Option<String>, Option<String>) {
    c.query_row(
        "SELECT state, lease_owner, provider_id FROM deliveries WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .expect("delivery row")
}

#[test]
fn two_workers_share_an_alert_and_never_claim_the_same_delivery() {
    let cluster = cluster!();
    plan(&mut open(&cluster, Duration::from_secs(30)), 300);
    let start = Arc::new(Barrier::new(2));
    let workers: Vec<_> = ["w1", "w2"]
        .into_iter()
        .map(|w| {
            let mut l = open(&cluster, Duration::from_secs(30));
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut mine = Vec::new();
                loop {
                    let got = claim(&mut l, w, 7);
                    if got.is_empty() {
                        return mine;
                    }
                    let batch: Vec<Record> = got.iter().map(|c| sent(c, w)).collect();
                    l.record(w, &batch).expect("record");
                    mine.extend(got.iter().map(|c| c.id));
                }
            })
        })
        .collect();
    let shares: Vec<Vec<i64>> = workers
        .into_iter()
        .map(|h| h.join().expect("worker"))
        .collect();
    let all: BTreeSet<i64> = shares.iter().flatten().copied().collect();
    assert_eq!(
        all.len(),
        shares.iter().map(Vec::len).sum::<usize>(),
        "no delivery claimed twice"
    );
    assert_eq!(all.len(), 300, "every delivery claimed");
    assert!(
        shares.iter().all(|s| !s.is_empty()),
        "both did a share: {:?}",
        shares.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let c = raw(&cluster);
    let by_worker: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'sent' AND provider_id IN ('w1', 'w2')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(by_worker, 300);
}

#[test]
fn an_expired_claim_is_taken_over_and_the_late_outcome_changes_nothing() {
    let cluster = cluster!();
    let mut w1 = open(&cluster, Duration::from_secs(1));
    let mut w2 = open(&cluster, Duration::from_secs(1));
    plan(&mut w1, 3);
    let first = claim(&mut w1, "w1", 10);
    assert_eq!(first.len(), 3);
    assert!(
        claim(&mut w2, "w2", 10).is_empty(),
        "a live claim is not taken"
    );
    std::thread::sleep(Duration::from_millis(1300));
    let taken = claim(&mut w2, "w2", 10);
    assert_eq!(
        taken.iter().map(|c| c.id).collect::<Vec<_>>(),
        first.iter().map(|c| c.id).collect::<Vec<_>>(),
        "the expired claims are taken over"
    );
    // The first worker wakes up and reports: nothing changes.
    w1.record(
        "w1",
        &first.iter().map(|c| sent(c, "late")).collect::<Vec<_>>(),
    )
    .expect("late record");
    let c = raw(&cluster);
    for d in &first {
        assert_eq!(row(&c, d.id), ("sending".into(), Some("w2".into()), None));
    }
    w2.record(
        "w2",
        &taken.iter().map(|c| sent(c, "w2")).collect::<Vec<_>>(),
    )
    .expect("record");
    for d in &taken {
        assert_eq!(row(&c, d.id), ("sent".into(), None, Some("w2".into())));
    }
    // A settle after completion changes nothing either.
    w1.record(
        "w1",
        &first.iter().map(|c| sent(c, "later")).collect::<Vec<_>>(),
    )
    .expect("later record");
    assert_eq!(row(&c, first[0].id).2.as_deref(), Some("w2"));
    assert!(w1.settle_if_done("a").expect("settle"));
}

#[test]
fn renewing_keeps_a_claim_and_resume_resets_only_expired_ones() {
    let cluster = cluster!();
    let mut w1 = open(&cluster, Duration::from_secs(1));
    let mut w2 = open(&cluster, Duration::from_secs(1));
    plan(&mut w1, 2);
    assert_eq!(claim(&mut w1, "w1", 10).len(), 2);
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(400));
        assert!(
            w1.renew_lease("a", "w1", Duration::from_secs(60))
                .expect("renew")
        );
    }
    assert!(
        claim(&mut w2, "w2", 10).is_empty(),
        "renewed claims stay w1's"
    );
    assert_eq!(
        w2.reset_sending("a").expect("reset"),
        0,
        "live claims are not reset"
    );
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(
        w2.reset_sending("a").expect("reset"),
        2,
        "expired claims are"
    );
}

#[test]
fn a_claim_stops_when_the_alert_is_cancelled() {
    let cluster = cluster!();
    let mut l = open(&cluster, Duration::from_secs(30));
    plan(&mut l, 2);
    assert!(
        l.transition("a", AlertState::Sending, AlertState::Cancelled)
            .expect("cancel")
    );
    let halt = l
        .claim("a", "w1", ChannelId::Email, 10)
        .expect("claim")
        .expect_err("halted");
    assert_eq!(halt, allerta::ledger::Halt::State(AlertState::Cancelled));
}

#[test]
fn immediate_transactions_are_serialised_across_connections() {
    let cluster = cluster!();
    drop(open(&cluster, Duration::from_secs(30)));
    let mut a = raw(&cluster);
    let inside = Arc::new(AtomicBool::new(false));
    let tx = a
        .transaction_with_behavior(Behavior::Immediate)
        .expect("begin");
    let other = {
        let cluster_url = options(&cluster, Duration::from_secs(30));
        let inside = inside.clone();
        std::thread::spawn(move || {
            let mut b = Conn::postgres(PgConn::open(&cluster_url).expect("connect"));
            let tx = b
                .transaction_with_behavior(Behavior::Immediate)
                .expect("begin");
            inside.store(true, Ordering::SeqCst);
            tx.commit().expect("commit");
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !inside.load(Ordering::SeqCst),
        "a second immediate transaction waits for the first"
    );
    tx.commit().expect("commit");
    other.join().expect("other");
    assert!(inside.load(Ordering::SeqCst));
}

#[test]
fn a_dead_connection_is_made_again_but_never_inside_a_transaction() {
    let cluster = cluster!();
    drop(open(&cluster, Duration::from_secs(30)));
    let mut a = raw(&cluster);
    let killer = raw(&cluster);
    let kill = |c: &Conn| {
        let pid: i64 = c
            .query_row("SELECT pg_backend_pid()", [], |r| r.get(0))
            .expect("pid");
        let done: bool = killer
            .query_row(
                "SELECT pg_terminate_backend(CAST(?1 AS integer))",
                [pid],
                |r| r.get(0),
            )
            .expect("terminate");
        assert!(done);
        std::thread::sleep(Duration::from_millis(200));
    };
    // Outside a transaction: the statement after the loss reconnects.
    kill(&a);
    let first = a.query_row("SELECT 1", [], |r| r.get::<_, i64>(0));
    if let Err(e) = &first {
        assert!(e.is_connection_lost(), "{e}");
    }
    assert_eq!(
        a.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .expect("again"),
        1
    );
    // Inside one: its work is gone, and said so.
    {
        let tx = a.transaction().expect("begin");
        tx.execute("CREATE TABLE t (x bigint)", []).expect("create");
        kill(&tx);
        let e = tx
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))
            .expect_err("the transaction is lost");
        assert!(e.is_connection_lost(), "{e}");
    }
    let missing = a.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0));
    assert!(missing.is_err(), "the lost transaction left nothing");
}

#[test]
fn values_cross_as_sqlites_storage_classes() {
    let cluster = cluster!();
    let c = raw(&cluster);
    let (sum, flag, nothing, text): (i64, bool, Option<String>, String) = c
        .query_row(
            "SELECT SUM(x), 2 > 1, NULL, '?1 stays' FROM (SELECT CAST(?1 AS bigint) AS x UNION ALL SELECT 40) s",
            [2i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("row");
    assert_eq!(
        (sum, flag, nothing, text.as_str()),
        (42, true, None, "?1 stays")
    );
    let picked: String = c
        .query_row(
            "SELECT CAST(?11 AS text) || CAST(?1 AS text)",
            Numbered(vec![(1, &"b" as &dyn ToValue), (11, &"a" as &dyn ToValue)]),
            |r| r.get(0),
        )
        .expect("numbered with a gap");
    assert_eq!(picked, "ab");
    let (n, f): (i64, f64) = c
        .query_row(
            "SELECT CAST(?1 AS bigint) + 1, CAST(?2 AS double precision) / 2",
            params![41i64, 3.0f64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("typed");
    assert_eq!((n, f), (42, 1.5));
}

#[test]
fn send_slots_are_shared_by_every_worker_and_idle_time_is_not_saved() {
    let cluster = cluster!();
    let start = Arc::new(Barrier::new(2));
    let now = chrono::Utc::now().timestamp_micros();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let l = open(&cluster, Duration::from_secs(30));
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                (0..50)
                    .map(|_| {
                        l.reserve_slots(ChannelId::Sms, 3, 1000, Some(now))
                            .expect("reserve")
                            .0
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut firsts: Vec<i64> = workers
        .into_iter()
        .flat_map(|h| h.join().expect("worker"))
        .collect();
    firsts.sort_unstable();
    // 100 reservations of 3 slots each, 1 ms apart: back to back from now,
    // none shared, whoever asked.
    let expected: Vec<i64> = (0..100).map(|i| now + i * 3000).collect();
    assert_eq!(firsts, expected);
    // Asked later than the last slot, a reservation starts then, not at the
    // end of the old schedule's gap.
    let l = open(&cluster, Duration::from_secs(30));
    let later = now + 10_000_000;
    assert_eq!(
        l.reserve_slots(ChannelId::Sms, 1, 1000, Some(later))
            .expect("reserve")
            .0,
        later
    );
    assert_eq!(
        l.reserve_slots(ChannelId::Email, 1, 1000, Some(now))
            .expect("reserve")
            .0,
        now,
        "each channel has its own schedule"
    );
}

#[test]
fn a_commit_that_fails_leaves_the_connection_outside_the_transaction() {
    let cluster = cluster!();
    drop(open(&cluster, Duration::from_secs(30)));
    let mut c = raw(&cluster);
    {
        let tx = c.transaction().expect("begin");
        tx.prepare_cached("INSERT INTO no_such_table (x) VALUES (?1)")
            .expect("prepare")
            .queue([1i64])
            .expect("queued, not sent yet");
        let e = tx
            .commit()
            .expect_err("the queued insert is refused at commit");
        assert!(e.to_string().contains("no_such_table"), "{e}");
    }
    // Rolled back: the next statement runs on its own, not in an aborted
    // transaction (nor, after a lost connection, refused forever as "in
    // the middle of a transaction").
    assert_eq!(
        c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .expect("usable"),
        1
    );
}
