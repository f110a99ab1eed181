//! The contact registry (SPEC §10's first-message bound): a send plans
//! from the contact files as last validated, and never from a stale copy —
//! any change to a file, even one that keeps its size, is validated again
//! before anything is sent.

mod common;

use common::{Project, send_meteo_all, synthetic_rows};

fn project() -> Project {
    let p = Project::new("[channels.sms]\ntransport = \"outbox\"\nmax_segments = 3\n");
    p.contacts("c.csv", &synthetic_rows(3, "example.org"));
    p
}

fn last_alert_sms(p: &Project) -> Vec<String> {
    let id = p
        .sql("SELECT id FROM alerts ORDER BY rowid DESC LIMIT 1")
        .remove(0);
    p.outbox("sms")
        .into_iter()
        .filter(|l| l["alert_id"] == id.as_str())
        .map(|l| l["to"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn send(p: &Project) -> (i32, String) {
    let (code, _, err) = p.run(&send_meteo_all(&[]));
    (code, err)
}

#[test]
fn unchanged_files_are_not_validated_again() {
    let p = project();
    assert_eq!(send(&p).0, 0);
    let built = p.sql("SELECT built_at FROM registry_state");
    assert_eq!(send(&p).0, 0);
    assert_eq!(p.sql("SELECT built_at FROM registry_state"), built);
    assert_eq!(last_alert_sms(&p).len(), 3);
}

#[test]
fn a_changed_file_is_validated_again_before_anything_is_sent() {
    let p = project();
    assert_eq!(send(&p).0, 0);

    // A new citizen: the next alert reaches them.
    let mut rows = synthetic_rows(3, "example.org");
    rows.push("nuovo,Nuovo Cittadino,+39 347 9999999,,,centro,cittadini,it,".into());
    p.contacts("c.csv", &rows);
    assert_eq!(send(&p).0, 0);
    assert!(last_alert_sms(&p).contains(&"+393479999999".to_owned()));

    // The same size, one digit changed: the new number, not the old one.
    let text = std::fs::read_to_string(p.path("contacts/c.csv")).unwrap();
    let edited = text.replace("+39 347 9999999", "+39 347 9999990");
    assert_eq!(edited.len(), text.len());
    p.write("contacts/c.csv", &edited);
    assert_eq!(send(&p).0, 0);
    let to = last_alert_sms(&p);
    assert!(to.contains(&"+393479999990".to_owned()), "{to:?}");
    assert!(!to.contains(&"+393479999999".to_owned()), "{to:?}");

    // An invalid row: exit 2 naming it, nothing sent.
    let before = p.outbox("sms").len();
    p.write(
        "contacts/c.csv",
        &format!("{edited}rotto,Rotto,12,,,centro,cittadini,it,\n"),
    );
    let (code, err) = send(&p);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("c.csv:6"), "{err}");
    assert_eq!(p.outbox("sms").len(), before);

    // --skip-invalid sends to the valid rows and records the skipped one.
    let (code, doc, err) = p.json(&send_meteo_all(&["--skip-invalid"]));
    assert_eq!(code, 0, "{err}");
    let skipped = doc["alert"]["skipped_rows"]
        .as_array()
        .expect("skipped rows");
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].as_str().unwrap_or_default().contains("c.csv:6"));
}

#[test]
fn a_new_zone_or_region_in_the_config_validates_the_files_again() {
    let p = project();
    assert_eq!(send(&p).0, 0);
    let built = p.sql("SELECT built_at FROM registry_state");
    let config = std::fs::read_to_string(p.path("allerta.toml")).unwrap();
    p.write(
        "allerta.toml",
        &format!("{config}\n[zones.nuova]\nname = \"Nuova\"\n"),
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(send(&p).0, 0);
    assert_ne!(p.sql("SELECT built_at FROM registry_state"), built);
}
