//! Drafts from the DPC bulletin (SPEC §16).

use super::*;

// ---------------------------------------------------------------------
// Drafts from the DPC bulletin (`watch`)
// ---------------------------------------------------------------------

pub const DPC_FILE: &str = "20261202_1430_today.json";

pub fn bulletin(idraulico: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/watch")
        .join(DPC_FILE);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("IDRAULICO_MONTELUPO", idraulico)
}

pub fn drafts(p: &Project) -> Vec<Value> {
    ok_json(p, &["drafts", "list"])["drafts"]
        .as_array()
        .expect("drafts")
        .clone()
}

pub fn watch_makes_drafts_that_are_sent_or_discarded(backend: &Backend) {
    let p = Project::with_database(
        &format!(
            r#"
[channels.telegram]
transport = "outbox"
[channels.sms]
transport = "outbox"

[watch]
notify_chats = [-100200300]

[[watch.source]]
name = "dpc"
kind = "dpc"
url = "file://bollettini/{DPC_FILE}"
comune = "MONTELUPO FIORENTINO"

[[watch.rule]]
level = "giallo"
risk = "idraulico"
template = "allerta-meteo"
vars = {{ livello = "{{{{ level }}}}", rischio = "{{{{ risk }}}}", dalle = "ore 0 di {{{{ day }}}}" }}
audience = ["all"]
"#
        ),
        backend,
    );
    p.contacts(
        "cittadini.csv",
        &[
            "c1,Anna Rossi,+39 347 1234567,,,centro,cittadini,it,".into(),
            "c2,Marco Bianchi,+39 348 7654321,,,fibbiana,cittadini,it,".into(),
        ],
    );
    p.write(
        &format!("bollettini/{DPC_FILE}"),
        &bulletin("Ordinaria / ALLERTA GIALLA"),
    );

    let (code, out, err) = p.run(&["watch", "--once"]);
    assert_eq!(code, 0, "{out}{err}");
    let list = drafts(&p);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["state"], "pending");
    assert_eq!(list[0]["variables"]["livello"], "giallo");
    assert_eq!(list[0]["audience"], json!(["all"]));
    let draft = list[0]["id"].to_string();
    // The officers are told the exact command; citizens get nothing.
    let notes = p.outbox("telegram");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("allerta send --draft {draft}")),
        "{notes:?}"
    );
    assert!(alerts(&p).is_empty());
    assert!(p.outbox("sms").is_empty());
    // The same bulletin again: no second draft.
    assert_eq!(p.run(&["watch", "--once"]).0, 0);
    assert_eq!(drafts(&p).len(), 1);

    // Sent: through the alert layer, once.
    let sent = ok_json(&p, &["send", "--draft", &draft, "--yes"]);
    let alert_id = id_of(&sent);
    assert_eq!(sent["channels"]["sms"]["sent"], 2, "{sent}");
    assert_eq!(drafts(&p)[0]["state"], "sent");
    assert_eq!(drafts(&p)[0]["alert_id"], alert_id.as_str());
    let (code, _, err) = p.run(&["send", "--draft", &draft, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already sent"), "{err}");
    assert_eq!(p.outbox("sms").len(), 2);

    // A raised level: a new draft, discarded, then never sendable.
    p.write(
        &format!("bollettini/{DPC_FILE}"),
        &bulletin("Moderata / ALLERTA ARANCIONE"),
    );
    assert_eq!(p.run(&["watch", "--once"]).0, 0);
    let list = drafts(&p);
    assert_eq!(list.len(), 2, "{list:?}");
    let raised = list
        .iter()
        .find(|d| d["state"] == "pending")
        .expect("a pending draft");
    assert_eq!(raised["variables"]["livello"], "arancione");
    let raised = raised["id"].to_string();
    let (code, _, err) = p.run(&["drafts", "discard", &raised]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = p.run(&["send", "--draft", &raised, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("discarded"), "{err}");
    assert_eq!(alerts(&p).len(), 1);
    assert_eq!(p.outbox("sms").len(), 2);

    // Back to none: a cessata-allerta draft for the alert from draft 1,
    // once; sending it cancels that alert.
    p.write(
        &format!("bollettini/{DPC_FILE}"),
        &bulletin("Assenza di fenomeni significativi prevedibili / NESSUNA ALLERTA"),
    );
    assert_eq!(p.run(&["watch", "--once"]).0, 0);
    let list = drafts(&p);
    assert_eq!(list.len(), 3, "{list:?}");
    let cessata = list
        .iter()
        .find(|d| d["template"] == "cessata-allerta")
        .expect("a cessata-allerta draft");
    assert_eq!(cessata["cancels"], alert_id.as_str(), "{cessata}");
    let cessata = cessata["id"].to_string();
    assert_eq!(p.run(&["watch", "--once"]).0, 0);
    assert_eq!(drafts(&p).len(), 3, "still one cessata draft");
    let (code, _, err) = p.run(&["send", "--draft", &cessata, "--yes"]);
    assert_eq!(code, 0, "{err}");
    let status = ok_json(&p, &["status", &alert_id]);
    assert_eq!(status["alert"]["state"], "cancelled", "{status}");
    let revoked = alerts(&p)[0].clone();
    assert_eq!(revoked["msg_type"], "Cancel", "{revoked}");
    let revoked = revoked["id"].as_str().expect("id").to_owned();
    assert_eq!(
        outbox_to(&p, "sms", &revoked).len(),
        2,
        "the revocation to both"
    );
    audit_is_whole(
        &p,
        &[
            "watch (draft)",
            "send",
            "send --draft",
            "watch (draft)",
            "drafts discard",
            "watch (draft)",
            "cancel",
            "send --draft",
        ],
    );
}
