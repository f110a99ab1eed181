//! The escalation ladder across a thread (SPEC §14): an update carries the
//! steps not yet due on, held until the same time, instead of sending them
//! to everyone at once.

mod common;

use common::{OUTBOX_CHANNELS, Project, send_meteo_all, synthetic_rows};

fn held_email(p: &Project, alert: &str) -> Vec<String> {
    p.sql(&format!(
        "SELECT held_until FROM deliveries
         WHERE alert_id = '{alert}' AND channel = 'email' AND state = 'pending' AND held_until IS NOT NULL"
    ))
}

#[test]
fn an_update_keeps_the_steps_not_yet_due_held_until_the_same_time() {
    let n = 5;
    let p = Project::new(&format!(
        "{OUTBOX_CHANNELS}\n[escalation]\nsteps = [{{ after = \"1h\", channel = \"email\" }}]\n"
    ));
    p.contacts("c.csv", &synthetic_rows(n, "example.org"));
    let (code, _, err) = p.run(&send_meteo_all(&["--channel", "sms"]));
    assert_eq!(code, 0, "{err}");
    let original = p.sql("SELECT id FROM alerts").remove(0);
    let due = held_email(&p, &original);
    assert_eq!(due.len(), n);

    let (code, doc, err) = p.json(&[
        "update",
        &original,
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
    let update = doc["alert"]["id"].as_str().expect("update id").to_owned();
    assert_eq!(doc["channels"]["sms"]["sent"], n as u64, "{doc}");
    assert!(
        p.outbox("email").is_empty(),
        "the step is not due for an hour: nobody gets it early"
    );
    assert_eq!(
        held_email(&p, &update),
        due,
        "the update's step is held until the original's time"
    );
    assert!(
        held_email(&p, &original).is_empty(),
        "the original's held steps are superseded"
    );
}

/// Under the two-person rule the steps count from the approval: the time
/// the alert waited for a second person never makes a step due early.
#[test]
fn escalation_steps_count_from_the_approval() {
    let p = Project::new(&format!(
        "{OUTBOX_CHANNELS}\n[escalation]\nsteps = [{{ after = \"1h\", channel = \"email\" }}]\n\
         [approval]\nstatuses = [\"Actual\"]\napprovers = [\"daemon\", \"bin\"]\ntimeout = \"3h\"\n"
    ));
    p.contacts("c.csv", &synthetic_rows(3, "example.org"));
    let as_user = |uid: &str, args: &[&str]| {
        let out = p.cmd().env("SUDO_UID", uid).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    as_user("1", &send_meteo_all(&["--channel", "sms"]));
    let id = p.sql("SELECT id FROM alerts").remove(0);
    // As if it had waited 2 hours for approval: the step would be due.
    let conn = rusqlite::Connection::open(p.path("allerta.db")).unwrap();
    let two_hours = 2 * 3600 * 1000;
    conn.execute(
        "UPDATE deliveries SET held_until = held_until - ?1 WHERE held_until IS NOT NULL",
        [two_hours],
    )
    .unwrap();
    let earlier = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    conn.execute("UPDATE alerts SET created_at = ?1", [&earlier])
        .unwrap();
    drop(conn);

    as_user("2", &["approve", &id, "--yes"]);
    assert_eq!(p.outbox("sms").len(), 3, "the first round went out");
    assert!(
        p.outbox("email").is_empty(),
        "the step is an hour after the approval, not already due"
    );
    let (code, _, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{err}");
    assert!(p.outbox("email").is_empty(), "nor due for the timer");
    let due: i64 = p.sql("SELECT MIN(held_until) FROM deliveries WHERE held_until IS NOT NULL")[0]
        .parse()
        .unwrap();
    let in_an_hour = chrono::Utc::now().timestamp_millis() + 3600 * 1000;
    assert!(
        (due - in_an_hour).abs() < 60_000,
        "due {due}, expected about {in_an_hour}"
    );
}
