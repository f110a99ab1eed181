//! The ledger's core, through the CLI: fan-out, drill, idempotency key,
//! a thread updated and cancelled while it is sent, SIGKILL then resume.

use super::*;

// ---------------------------------------------------------------------
// A send to everyone on the outbox transports
// ---------------------------------------------------------------------

pub fn send_fans_out_once_per_address_and_reports_it(backend: &Backend) {
    let p = citizens(backend);
    let doc = ok_json(&p, &meteo_send(&["--all", "--yes"]));
    let id = id_of(&doc);
    let ch = &doc["channels"];
    assert_eq!(
        (ch["sms"]["total"].clone(), ch["sms"]["sent"].clone()),
        (json!(3), json!(3)),
        "{doc}"
    );
    assert_eq!(ch["email"]["total"], 2, "anna's email once: {doc}");
    assert_eq!(ch["email"]["sent"], 2, "{doc}");
    assert_eq!(ch["telegram"]["total"], 2, "{doc}");
    assert_eq!(ch["banner"]["total"], 1, "{doc}");
    assert_eq!(doc["alert"]["status"], "Actual");
    assert_eq!(doc["alert"]["msg_type"], "Alert");
    assert_eq!(doc["alert"]["state"], "settled");
    assert_eq!(doc["alert"]["operator"], "test-officer");

    // Every recipient once in the outbox, in their language.
    let mut sms = outbox_to(&p, "sms", &id);
    sms.sort();
    assert_eq!(sms, ["+393330000001", "+393330000002", "+393330000003"]);
    let mut email = outbox_to(&p, "email", &id);
    email.sort();
    assert_eq!(email, ["anna@example.org", "bob@example.org"]);
    let mut telegram = outbox_to(&p, "telegram", &id);
    telegram.sort();
    assert_eq!(telegram, ["100000001", "100000003"]);
    let bob = p
        .outbox("email")
        .into_iter()
        .find(|l| l["to"] == "bob@example.org")
        .expect("bob's email");
    assert!(
        bob["subject"]
            .as_str()
            .unwrap_or_default()
            .contains("Orange"),
        "English for Bob: {bob}"
    );
    // Each email carries its own unsubscribe token (the delivery's secret,
    // 32 lowercase hex digits on both backends).
    let tokens: HashSet<String> = p
        .outbox("email")
        .iter()
        .map(|l| {
            let header = l["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .find(|h| h[0] == "List-Unsubscribe")
                .unwrap_or_else(|| panic!("no List-Unsubscribe: {l}"))[1]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let token = header
                .split("?t=")
                .nth(1)
                .and_then(|t| t.strip_suffix('>'))
                .unwrap_or_else(|| panic!("{header}"))
                .to_owned();
            assert!(
                token.len() == 32
                    && token
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{header}"
            );
            token
        })
        .collect();
    assert_eq!(tokens.len(), 2, "one token per delivery: {tokens:?}");
    assert_eq!(outbox_to(&p, "banner", &id).len(), 1);

    // The same ledger seen by status, list and export.
    let list = alerts(&p);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["channels"]["sms"]["total"], 3);
    assert_eq!(list[0]["channels"]["email"]["failed"], 0);
    let all = deliveries(&p, &id);
    assert_eq!(all.len(), 8, "{all:?}");
    assert!(
        all.iter()
            .all(|d| d["state"] == "sent" && d["attempts"] == 1),
        "{all:?}"
    );
    let (code, csv, err) = p.run(&["export", &id, "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(csv.lines().count(), 9, "{csv}");
    assert!(csv.starts_with("id,channel,address"), "{csv}");
    let (code, exported, err) = p.run(&["export", &id, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(exported.contains("+393330000002"), "{exported}");
    let (code, _, err) = p.run(&["status", "nope"]);
    assert_eq!(code, 2, "{err}");
    audit_is_whole(&p, &["send"]);
}

pub fn check_finds_the_ledger_ready_before_and_after_the_first_send(backend: &Backend) {
    let p = citizens(backend);
    // Nothing created yet: check creates nothing and says it is ready.
    let (code, doc, err) = p.json(&["check"]);
    assert_eq!(code, 0, "{err}\n{doc}");
    let db = check_item(&doc, "database");
    assert_eq!(db["ok"], true, "{db}");
    ok_json(&p, &meteo_send(&["--zone", "fibbiana", "--yes"]));
    let (code, doc, err) = p.json(&["check"]);
    assert_eq!(code, 0, "{err}\n{doc}");
    let db = check_item(&doc, "database");
    assert_eq!(db["ok"], true, "{db}");
    assert!(db["detail"].to_string().contains("schema version"), "{db}");
    // Secrets are never printed (SPEC §2): not the database's password.
    assert!(!doc.to_string().contains(pg::PASSWORD), "{doc}");
    assert_eq!(alerts(&p).len(), 1, "check sends nothing");
    assert_eq!(p.outbox("sms").len(), 1);
}
// ---------------------------------------------------------------------
// A drill
// ---------------------------------------------------------------------

pub fn a_drill_reaches_only_the_drill_audience_marked_as_exercise(backend: &Backend) {
    let p = citizens(backend);
    let doc = ok_json(&p, &["send", "esercitazione", "--drill"]);
    let id = id_of(&doc);
    assert_eq!(doc["alert"]["status"], "Exercise");
    assert_eq!(outbox_to(&p, "sms", &id), ["+393330000003"], "only carla");
    assert_eq!(outbox_to(&p, "telegram", &id), ["100000003"]);
    assert!(outbox_to(&p, "email", &id).is_empty(), "carla has no email");
    for channel in ["sms", "telegram"] {
        for line in p.outbox(channel) {
            let text = line["text"].as_str().unwrap_or_default();
            assert!(text.starts_with("[ESERCITAZIONE] "), "{line}");
            assert_eq!(line["status"], "Exercise", "{line}");
        }
    }
    // A drill never touches the public banner: only the drill banner.
    assert_eq!(outbox_to(&p, "banner", &id), ["drill"]);
    // Beyond the drill audience, a drill asks first: nothing planned.
    let (code, _, err) = p.run(&["send", "esercitazione", "--drill", "--all"]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(alerts(&p).len(), 1);
    assert_eq!(alerts(&p)[0]["status"], "Exercise");
    audit_is_whole(&p, &["send"]);
}
// ---------------------------------------------------------------------
// The idempotency key
// ---------------------------------------------------------------------

pub fn the_same_key_twice_is_one_alert_and_another_fingerprint_is_refused(backend: &Backend) {
    let p = citizens(backend);
    let args = meteo_send(&["--zone", "centro", "--yes", "--key", "piena-2026-11-26"]);
    let first = id_of(&ok_json(&p, &args));
    let second = id_of(&ok_json(&p, &args));
    assert_eq!(first, second);
    assert_eq!(alerts(&p).len(), 1);
    let mut sms = outbox_to(&p, "sms", &first);
    sms.sort();
    assert_eq!(
        sms,
        ["+393330000001", "+393330000003"],
        "nothing sent twice"
    );

    // The same key for another alert names the one that holds it.
    let (code, _, err) = p.run(&[
        "send",
        "allerta-meteo",
        "--var",
        "livello=rosso",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ora",
        "--zone",
        "centro",
        "--yes",
        "--key",
        "piena-2026-11-26",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&first),
        "names the alert holding the key: {err}"
    );
    assert_eq!(alerts(&p).len(), 1);
    assert_eq!(p.outbox("sms").len(), 2, "nothing sent");
    audit_is_whole(&p, &["send", "send --key (resume)"]);
}
// ---------------------------------------------------------------------
// Update, then cancel, of a thread whose latest message is going out
// ---------------------------------------------------------------------

pub fn update_then_cancel_a_thread_while_it_is_being_sent(backend: &Backend) {
    let n = 300;
    let p = slow_sms(backend, n, 100);
    let original = id_of(&ok_json(&p, &meteo_send(&["--all", "--yes"])));
    let update_args = |of: &str, livello: &str| -> Vec<String> {
        [
            "update",
            of,
            "allerta-meteo",
            "--var",
            &format!("livello={livello}"),
            "--var",
            "rischio=idraulico",
            "--var",
            "dalle=ore 18",
            "--yes",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let args = update_args(&original, "rosso");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let update = ok_json(&p, &args);
    let first_update = id_of(&update);
    assert_eq!(update["alert"]["msg_type"], "Update", "{update}");
    assert_eq!(update["alert"]["references"], json!([original]), "{update}");
    assert_eq!(update["channels"]["sms"]["sent"], n, "{update}");
    assert_eq!(outbox_to(&p, "sms", &first_update).len(), n);

    // A second update (of the original id: it acts on the latest) is being
    // sent when the officer cancels the thread.
    let args = update_args(&original, "arancione");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sender = spawn(&p, &args);
    wait_for(
        "the second update to be half way",
        Duration::from_secs(30),
        || (p.outbox("sms").len() >= 2 * n + 20).then_some(()),
    );
    let latest = alerts(&p)[0]["id"].as_str().expect("id").to_owned();
    assert_ne!(latest, first_update);
    let cancel = ok_json(&p, &["cancel", &original, "--yes"]);
    let (code, err) = finish(sender);
    assert_eq!(code, 1, "the sender stops at its next claim: {err}");
    assert!(err.contains("cancelled"), "{err}");

    let cancel_id = id_of(&cancel);
    assert_eq!(cancel["alert"]["msg_type"], "Cancel", "{cancel}");
    assert_eq!(
        cancel["alert"]["references"],
        json!([original, first_update, latest]),
        "the Cancel names every message of the thread: {cancel}"
    );
    assert_eq!(
        cancel["thread"],
        json!([original, first_update, latest, cancel_id]),
        "{cancel}"
    );
    let stopped = ok_json(&p, &["status", &latest]);
    assert_eq!(stopped["alert"]["state"], "cancelled", "{stopped}");
    let sms = &stopped["channels"]["sms"];
    assert_eq!(sms["pending"], 0, "{stopped}");
    assert_eq!(sms["sending"], 0, "{stopped}");
    let skipped = sms["skipped"].as_u64().expect("skipped");
    let sent = sms["sent"].as_u64().expect("sent");
    assert!(
        skipped > 0,
        "the cancel skipped what was pending: {stopped}"
    );
    assert_eq!(sent + skipped, n as u64, "{stopped}");
    let reached: HashSet<String> = outbox_to(&p, "sms", &latest).into_iter().collect();
    assert_eq!(reached.len() as u64, sent, "{stopped}");
    // Whoever the stopped update reached gets the revocation.
    let revoked: HashSet<String> = outbox_to(&p, "sms", &cancel_id).into_iter().collect();
    assert!(reached.is_subset(&revoked), "{reached:?} vs {revoked:?}");
    assert_eq!(cancel["alert"]["state"], "settled", "{cancel}");
    // The public banner was removed by the cancel.
    assert_eq!(outbox_to(&p, "banner", &cancel_id).len(), 0);

    // The timer never sends the cancelled update's remainder, and an
    // officer cannot revive it (SPEC §11: dead alerts stay dead).
    assert_eq!(p.run(&["resume"]).0, 0);
    for verb in ["retry", "resume"] {
        let (code, _, err) = p.run(&[verb, &latest, "--yes"]);
        assert_eq!(code, 2, "{verb}: {err}");
        assert!(err.contains("cancelled"), "{err}");
    }
    let (code, _, err) = p.run(&["retry", &original, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(outbox_to(&p, "sms", &latest).len() as u64, sent);
    let list = alerts(&p);
    let states: Vec<&str> = list
        .iter()
        .map(|a| a["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states[1], "cancelled", "{list:?}");
    assert_eq!(list[0]["msg_type"], "Cancel");
    audit_is_whole(&p, &["send", "update", "update", "cancel"]);
}
// ---------------------------------------------------------------------
// SIGKILL in the middle of a send, then resume
// ---------------------------------------------------------------------

pub fn sigkill_mid_send_then_resume_loses_nobody_and_resends_no_sent(backend: &Backend) {
    let n = 600;
    let p = slow_sms(backend, n, 200);
    let mut child = spawn(
        &p,
        &[
            "send",
            "esercitazione",
            "--drill",
            "--all",
            "--channel",
            "sms",
            "--yes",
        ],
    );
    wait_for("a quarter of the send", Duration::from_secs(30), || {
        (p.outbox("sms").len() >= n / 4).then_some(())
    });
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let before = p.outbox("sms").len();
    assert!(
        before < n,
        "the send finished before the kill: the test proves nothing"
    );
    let id = alerts(&p)[0]["id"].as_str().expect("id").to_owned();
    let sent_before: Vec<i64> = deliveries(&p, &id)
        .iter()
        .filter(|d| d["state"] == "sent")
        .map(|d| d["id"].as_i64().expect("delivery id"))
        .collect();
    assert!(!sent_before.is_empty());

    let (code, doc, err) = p.json(&["resume"]);
    assert_eq!(code, 0, "{err}\n{doc}");
    assert_eq!(doc["resumed"][0]["channels"]["sms"]["sent"], n, "{doc}");
    let status = ok_json(&p, &["status", &id]);
    assert_eq!(status["alert"]["state"], "settled", "{status}");

    let lines = p.outbox("sms");
    let mut per_delivery = HashMap::<i64, usize>::new();
    for l in &lines {
        *per_delivery
            .entry(l["delivery_id"].as_i64().expect("delivery_id"))
            .or_default() += 1;
    }
    assert_eq!(per_delivery.len(), n, "someone was never messaged");
    for id in &sent_before {
        assert_eq!(per_delivery[id], 1, "delivery {id} was sent, then re-sent");
    }
    // Duplicates only for what was in flight or not yet committed (SPEC §7).
    let duplicates = lines.len() - n;
    assert!(duplicates <= 64 + 20, "{duplicates} duplicates");
    let (code, out, _) = p.run(&["resume"]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to resume"), "{out}");
    audit_is_whole(&p, &["send", "resume"]);
}
