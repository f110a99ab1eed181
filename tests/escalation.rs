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
