//! Planning in chunks (SPEC §10, first message): a large audience is
//! planned while the first messages are already out, and no recipient is
//! lost or doubled however the send ends — finished, killed half way
//! through its planning and resumed, or followed by an update.
//! `ALLERTA_PLAN_CHUNK` makes the chunks tiny so a plan stays pending long
//! enough to be killed in the middle of it.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{OUTBOX_CHANNELS, Project, send_meteo_all, synthetic_rows};

fn project(n: usize) -> Project {
    let p = Project::new(OUTBOX_CHANNELS);
    p.contacts("c.csv", &synthetic_rows(n, "example.org"));
    p
}

/// How many times each address got an SMS.
fn sms_per_address(p: &Project) -> HashMap<String, usize> {
    let mut per = HashMap::new();
    for l in p.outbox("sms") {
        *per.entry(l["to"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    per
}

/// Starts a send with `chunk` addresses per planning chunk and SIGKILLs it
/// as soon as the first SMS is in the outbox.
fn send_and_kill_at_first_sms(p: &Project, chunk: &str) {
    let mut child = p
        .cmd()
        .env("ALLERTA_PLAN_CHUNK", chunk)
        .args(send_meteo_all(&["--channel", "sms"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while p.outbox("sms").is_empty() {
        assert!(Instant::now() < deadline, "no SMS left at all");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Sends with `chunk` addresses per planning chunk; exit 0 or the test
/// fails with stderr. Returns the `--json` report.
fn send_in_chunks(p: &Project, chunk: &str, extra: &[&str]) -> serde_json::Value {
    let out = p
        .cmd()
        .env("ALLERTA_PLAN_CHUNK", chunk)
        .arg("--json")
        .args(send_meteo_all(extra))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON report")
}

fn pending_plans(p: &Project) -> usize {
    p.sql("SELECT COUNT(*) FROM plan_pending")[0]
        .parse()
        .unwrap()
}

#[test]
fn a_large_audience_planned_in_chunks_reaches_everyone_once() {
    let n = 1500;
    let p = project(n);
    let doc = send_in_chunks(&p, "50", &[]);
    for channel in ["sms", "email", "telegram"] {
        assert_eq!(
            doc["channels"][channel]["sent"], n as u64,
            "{channel}: {doc}"
        );
        assert_eq!(p.outbox(channel).len(), n, "{channel}");
    }
    let per = sms_per_address(&p);
    assert_eq!(per.len(), n);
    assert!(per.values().all(|&k| k == 1), "an SMS went out twice");
    assert_eq!(pending_plans(&p), 0);
    assert_eq!(
        p.sql("SELECT state FROM alerts"),
        vec!["settled".to_owned()],
        "the alert settles only once its whole plan was sent"
    );
}

#[test]
fn resume_finishes_a_plan_cut_short_by_a_kill() {
    let n = 2000;
    let p = project(n);
    send_and_kill_at_first_sms(&p, "3");
    assert_eq!(
        pending_plans(&p),
        1,
        "the kill came after planning ended: the test proves nothing"
    );
    let planned: usize = p.sql("SELECT COUNT(*) FROM deliveries")[0].parse().unwrap();
    assert!(planned < n, "{planned} planned before the kill");
    let sent_before = p.sql("SELECT address FROM deliveries WHERE state = 'sent'");
    let (_, status, _) = p.json(&["status"]);
    assert_eq!(status["alert"]["planning_pending"], true, "{status}");
    let (_, text, _) = p.run(&["status"]);
    assert!(text.contains("planning: NOT FINISHED"), "{text}");

    let (code, doc, err) = p.json(&["resume"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        doc["resumed"][0]["channels"]["sms"]["sent"], n as u64,
        "{doc}"
    );
    assert_eq!(pending_plans(&p), 0);
    let per = sms_per_address(&p);
    assert_eq!(per.len(), n, "someone was never messaged");
    for address in &sent_before {
        assert_eq!(per[address], 1, "{address} was sent, then re-sent");
    }
    // Duplicates only where the outcome was not committed yet (the writer's
    // batch window and what was in flight).
    let duplicates: usize = per.values().map(|k| k - 1).sum();
    assert!(duplicates <= 64, "{duplicates} duplicates");
}

#[test]
fn an_update_reaches_the_recipients_a_killed_send_had_not_planned_yet() {
    let n = 2000;
    let p = project(n);
    send_and_kill_at_first_sms(&p, "3");
    assert_eq!(pending_plans(&p), 1, "the kill came after planning ended");
    let id = p.sql("SELECT id FROM alerts").remove(0);

    let (code, doc, err) = p.json(&[
        "update",
        &id,
        "allerta-meteo",
        "--var",
        "livello=rosso",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ora",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["channels"]["sms"]["sent"], n as u64, "{doc}");
    assert_eq!(pending_plans(&p), 0);
    let update_sms = p
        .outbox("sms")
        .into_iter()
        .filter(|l| l["alert_id"] != id.as_str())
        .count();
    assert_eq!(
        update_sms, n,
        "the update reached everyone the alert was for"
    );
}

#[test]
fn a_contact_planned_in_a_later_chunk_keeps_its_chat_id_over_a_subscriber() {
    let n = 300;
    let p = project(n);
    // The last contact's chat id is also a bot subscriber's.
    let chat = (100_000_000 + n).to_string();
    // Any command creates the ledger; then the subscriber.
    let (code, _, err) = p.run(&["list"]);
    assert_eq!(code, 0, "{err}");
    let conn = rusqlite::Connection::open(p.path("allerta.db")).unwrap();
    conn.execute(
        "INSERT INTO subscribers (chat_id, zones, language, active, created_at, updated_at)
         VALUES (?1, 'centro', 'en', 1, 'x', 'x')",
        [&chat],
    )
    .unwrap();
    drop(conn);

    send_in_chunks(&p, "10", &["--channel", "telegram"]);
    let id = p
        .sql("SELECT id FROM alerts ORDER BY rowid DESC LIMIT 1")
        .remove(0);
    let rows = p.sql(&format!(
        "SELECT recipient || ' ' || language FROM deliveries
         WHERE alert_id = '{id}' AND address = '{chat}'"
    ));
    assert_eq!(
        rows,
        vec![format!("c{n} it")],
        "one delivery, the contact's"
    );
}

#[test]
fn an_escalation_step_planned_in_later_chunks_is_held_like_the_first() {
    let n = 600;
    let p = Project::new(&format!(
        "{OUTBOX_CHANNELS}\n[escalation]\nsteps = [{{ after = \"1h\", channel = \"email\" }}]\n"
    ));
    p.contacts("c.csv", &synthetic_rows(n, "example.org"));
    send_in_chunks(&p, "25", &["--channel", "sms"]);
    assert_eq!(sms_per_address(&p).len(), n);
    assert!(
        p.outbox("email").is_empty(),
        "the step is not due for an hour"
    );
    assert_eq!(
        p.sql(
            "SELECT COUNT(*) FROM deliveries WHERE channel = 'email' AND state = 'pending'
             AND held_until IS NOT NULL AND escalation_step = 1"
        ),
        vec![n.to_string()],
        "every step delivery, whatever its chunk, is held"
    );
}

/// The timer's `resume` finishes a plan even when every delivery planned
/// before the kill was already sent: nothing pending, yet people left.
#[test]
fn the_timer_resumes_a_cut_short_plan_with_nothing_pending() {
    let n = 2000;
    let p = project(n);
    send_and_kill_at_first_sms(&p, "3");
    assert_eq!(pending_plans(&p), 1, "the kill came after planning ended");
    let conn = rusqlite::Connection::open(p.path("allerta.db")).unwrap();
    conn.execute("UPDATE deliveries SET state = 'sent'", [])
        .unwrap();
    drop(conn);
    let planned: usize = p.sql("SELECT COUNT(*) FROM deliveries")[0].parse().unwrap();

    let (code, out, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(pending_plans(&p), 0);
    assert_eq!(
        p.sql("SELECT COUNT(*) FROM deliveries"),
        vec![n.to_string()],
        "{out}{err}"
    );
    let sent_now = p.outbox("sms").len();
    assert!(
        sent_now >= n - planned,
        "{sent_now} sent after {planned} planned"
    );
}
