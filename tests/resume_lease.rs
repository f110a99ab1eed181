//! allerta-resume.timer runs `allerta resume` every few minutes, also while
//! an officer's long `send` is still going. Resume must then leave that
//! alert alone — its `sending` deliveries are in flight, not lost — and exit
//! 0; once the sender is gone it re-sends them (a duplicate beats a loss).

mod common;

use common::{Project, synthetic_rows};

fn exec(p: &Project, sql: &str) {
    let conn = rusqlite::Connection::open(p.path("allerta.db")).expect("open db");
    conn.execute_batch(sql).expect("sql");
}

#[test]
fn resume_leaves_an_alert_held_by_a_live_send_and_finishes_it_afterwards() {
    let p = Project::new("[channels.sms]\ntransport = \"outbox\"\n");
    p.contacts("cittadini.csv", &synthetic_rows(3, "example.it"));
    let (code, _, err) = p.run(&[
        "send",
        "esercitazione",
        "--drill",
        "--group",
        "cittadini",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(p.outbox("sms").len(), 3);

    // A live sender on this host (this test process) holds the alert, with
    // one delivery in flight.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let until = chrono::Utc::now().timestamp_millis() + 120_000;
    exec(
        &p,
        &format!(
            "UPDATE alerts SET state = 'sending', lease_owner = '{}:{}', lease_until = {until};
             UPDATE deliveries SET state = 'sending' WHERE id = (SELECT min(id) FROM deliveries);",
            host.trim(),
            std::process::id()
        ),
    );

    let (code, out, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("being sent right now"), "{err}");
    assert_eq!(
        p.sql("SELECT count(*) FROM deliveries WHERE state = 'sending'"),
        ["1"],
        "resume touched an in-flight delivery"
    );
    assert_eq!(
        p.outbox("sms").len(),
        3,
        "resume sent while the alert was held"
    );

    // The sender is gone: the next run finishes the alert.
    exec(
        &p,
        "UPDATE alerts SET lease_owner = NULL, lease_until = NULL;",
    );
    let (code, _, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        p.sql("SELECT count(*) FROM deliveries WHERE state = 'sending'"),
        ["0"]
    );
    assert_eq!(
        p.outbox("sms").len(),
        4,
        "the unknown-outcome delivery is re-sent"
    );
    let (code, out, _) = p.run(&["resume"]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to resume"), "{out}");
}
