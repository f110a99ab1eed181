//! The alert layer's safety rules (SPEC §11), each tried the way an officer
//! would trip over it, with the real binary on the outbox transport.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{OUTBOX_CHANNELS, Project, send_meteo_all, synthetic_rows};

const EVACUAZIONE: [&str; 7] = [
    "evacuazione",
    "--var",
    "zona=via Roma e via Verdi",
    "--var",
    "punto_raccolta=piazza VIII Marzo",
    "--var",
    "motivo=rischio di esondazione",
];

/// Two citizens and one member of the drill group.
fn project() -> Project {
    let p = Project::new(OUTBOX_CHANNELS);
    p.contacts(
        "cittadini.csv",
        &[
            "anna,Anna Bianchi,333 000 0001,anna@example.org,100000001,centro,cittadini,it,".into(),
            "bob,Bob Smith,+39 333 000 0002,bob@example.org,,fibbiana,cittadini,en,".into(),
            "carla,Carla Verdi,3330000003,,100000003,centro,esercitazione,it,".into(),
        ],
    );
    p
}

fn args<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["send"];
    v.extend_from_slice(base);
    v.extend_from_slice(extra);
    v
}

fn all_outbox(p: &Project) -> Vec<serde_json::Value> {
    ["telegram", "sms", "email", "banner"]
        .iter()
        .flat_map(|c| p.outbox(c))
        .collect()
}

fn evacuazione_vars_ok(p: &Project) {
    // The shipped template's variables, so a failure here is about the rule.
    let mut preview = vec!["preview"];
    preview.extend_from_slice(&EVACUAZIONE);
    let (code, _, err) = p.run(&preview);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_test_to_everyone_needs_confirmation_and_carries_the_test_marker() {
    let p = project();
    evacuazione_vars_ok(&p);
    // No terminal, no --yes: refused before anything is planned.
    let (code, _, err) = p.run(&args(&EVACUAZIONE, &["--test", "--all"]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert!(all_outbox(&p).is_empty(), "nothing may leave");
    assert!(
        !p.path("allerta.db").exists() || p.sql("SELECT COUNT(*) FROM alerts") == ["0"],
        "nothing may be planned"
    );

    let (code, _, err) = p.run(&args(&EVACUAZIONE, &["--test", "--all", "--yes"]));
    assert_eq!(code, 0, "{err}");
    for ch in ["telegram", "sms", "email"] {
        let lines = p.outbox(ch);
        assert!(!lines.is_empty(), "{ch}");
        for l in lines {
            let text = l["text"].as_str().expect("text");
            assert!(text.starts_with("[TEST] "), "{ch}: {text}");
            if let Some(subject) = l["subject"].as_str() {
                assert!(subject.starts_with("[TEST] "), "{ch} subject: {subject}");
            }
        }
    }
    // A Test never reaches the public banner: only the drill banner.
    let banner: Vec<_> = p.outbox("banner").iter().map(|l| l["to"].clone()).collect();
    assert_eq!(banner, [serde_json::json!("drill")]);
}

#[test]
fn a_drill_beyond_the_drill_audience_needs_confirmation_but_not_within_it() {
    let p = project();
    let (code, _, err) = p.run(&["send", "esercitazione", "--drill", "--all"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("outside the drill audience"), "{err}");
    assert!(all_outbox(&p).is_empty());

    // The drill audience alone: no question asked.
    let (code, _, err) = p.run(&["send", "esercitazione", "--drill"]);
    assert_eq!(code, 0, "{err}");
    let sms: Vec<_> = p.outbox("sms").iter().map(|l| l["to"].clone()).collect();
    assert_eq!(sms, [serde_json::json!("+393330000003")]);
}

#[test]
fn an_actual_alert_to_the_drill_group_only_is_not_asked_but_one_to_the_public_is() {
    let p = project();
    let (code, _, err) = p.run(&args(
        &EVACUAZIONE,
        &["--group", "esercitazione", "--channel", "sms"],
    ));
    assert_eq!(code, 0, "only drill-audience recipients: {err}");
    let (code, _, err) = p.run(&args(&EVACUAZIONE, &["--group", "esercitazione"]));
    assert_eq!(
        code, 4,
        "the public banner is outside the drill audience: {err}"
    );
}

#[test]
fn empty_or_blank_markers_are_config_errors() {
    for (section, body) in [("drill", "prefix = \"  \""), ("test", "prefix = \"\"")] {
        let p = project();
        let config = std::fs::read_to_string(p.path("allerta.toml")).unwrap();
        let config = if section == "drill" {
            config.replace("prefix = \"[ESERCITAZIONE]\"", body)
        } else {
            format!("{config}\n[test]\n{body}\n")
        };
        p.write("allerta.toml", &config);
        let (code, _, err) = p.run(&["send", "esercitazione", "--drill", "--yes"]);
        assert_eq!(code, 2, "{section}: {err}");
        assert!(err.contains(&format!("{section}.prefix")), "{err}");
        assert!(all_outbox(&p).is_empty());
    }
}

/// `n` citizens and an SMS outbox paced at 100/s: a send lasts long enough
/// to be stopped half way.
fn slow_project(n: usize) -> Project {
    let p = Project::new(
        "[channels.sms]\ntransport = \"outbox\"\nrate_per_second = 100\nmax_segments = 3\n",
    );
    p.contacts("c.csv", &synthetic_rows(n, "example.org"));
    p
}

fn spawn(p: &Project, args: &[&str]) -> std::process::Child {
    p.cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn allerta")
}

fn wait_for_sms(p: &Project, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.outbox("sms").len() < n {
        assert!(Instant::now() < deadline, "send made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

fn finish(child: std::process::Child) -> (i32, String) {
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sms_to(p: &Project) -> Vec<String> {
    p.outbox("sms")
        .iter()
        .map(|l| l["to"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A real alert to `n` citizens on the slow SMS outbox, running, with at
/// least `after` messages out.
fn running_send(n: usize, after: usize, extra: &[&str]) -> (Project, std::process::Child) {
    let p = slow_project(n);
    let mut a = send_meteo_all(&["--channel", "sms"]);
    a.extend_from_slice(extra);
    let child = spawn(&p, &a);
    wait_for_sms(&p, after);
    (p, child)
}

#[test]
fn ctrl_c_pauses_the_alert_and_only_resume_with_its_id_and_a_confirmation_finishes_it() {
    let n = 300;
    let (p, child) = running_send(n, 30, &[]);
    signal(&child, libc::SIGINT);
    let (code, err) = finish(child);
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("PAUSED"), "{err}");
    let id = p.sql("SELECT id FROM alerts").remove(0);
    assert!(err.contains(&format!("allerta cancel {id}")), "{err}");
    assert!(err.contains(&format!("allerta resume {id}")), "{err}");
    assert_eq!(p.sql("SELECT state FROM alerts"), ["paused"]);
    let sent = p.outbox("sms").len();
    assert!(sent < n, "the pause stopped the send ({sent} of {n})");

    // The timer never touches a paused alert.
    let (code, out, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(p.outbox("sms").len(), sent, "the timer sent a paused alert");
    assert_eq!(p.sql("SELECT state FROM alerts"), ["paused"]);

    // `resume ID` asks: refused without a terminal.
    let (code, _, err) = p.run(&["resume", &id]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(p.outbox("sms").len(), sent);

    let (code, _, err) = p.run(&["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{err}");
    let mut to = sms_to(&p);
    assert_eq!(to.len(), n, "everyone exactly once after the resume");
    to.sort();
    to.dedup();
    assert_eq!(to.len(), n, "no duplicates");
    assert_eq!(p.sql("SELECT state FROM alerts"), ["settled"]);
}

#[test]
fn sigterm_leaves_the_alert_sending_for_the_timer() {
    let n = 300;
    let (p, child) = running_send(n, 30, &[]);
    signal(&child, libc::SIGTERM);
    let (code, err) = finish(child);
    assert_eq!(code, 1, "{err}");
    assert_eq!(p.sql("SELECT state FROM alerts"), ["sending"]);
    let (code, _, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(p.outbox("sms").len(), n);
}

#[test]
fn a_key_used_by_a_drill_never_stands_for_a_real_alert_or_the_reverse() {
    let p = project();
    let (code, _, err) = p.run(&["send", "esercitazione", "--drill", "--key", "k1"]);
    assert_eq!(code, 0, "{err}");
    let drill = p.sql("SELECT id FROM alerts").remove(0);
    let before = all_outbox(&p).len();

    let (code, _, err) = p.run(&args(&EVACUAZIONE, &["--all", "--yes", "--key", "k1"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&drill),
        "names the alert holding the key: {err}"
    );
    assert_eq!(all_outbox(&p).len(), before, "nothing sent");

    let (code, _, err) = p.run(&args(&EVACUAZIONE, &["--all", "--yes", "--key", "k2"]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = p.run(&["send", "esercitazione", "--drill", "--key", "k2"]);
    assert_eq!(code, 2, "{err}");

    // The same command with the same key resumes (and sends nothing new).
    let after = all_outbox(&p).len();
    let (code, _, err) = p.run(&args(&EVACUAZIONE, &["--all", "--yes", "--key", "k2"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(all_outbox(&p).len(), after);
    assert_eq!(p.sql("SELECT COUNT(*) FROM alerts"), ["2"]);
}

#[test]
fn the_same_key_during_a_live_send_is_refused_without_touching_its_deliveries() {
    let n = 400;
    let p = slow_project(n);
    let a = send_meteo_all(&["--channel", "sms", "--key", "piena"]);
    let first = spawn(&p, &a);
    wait_for_sms(&p, 20);
    let (code, _, err) = p.run(&a);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("being sent right now by process"), "{err}");
    assert!(
        err.contains(&first.id().to_string()),
        "names the pid: {err}"
    );
    let (code, err) = finish(first);
    assert_eq!(code, 0, "{err}");
    let mut to = sms_to(&p);
    assert_eq!(to.len(), n);
    to.sort();
    to.dedup();
    assert_eq!(to.len(), n, "the second run made duplicates");
}

fn meteo_all(p: &Project) -> String {
    let (code, doc, err) = p.json(&send_meteo_all(&[]));
    assert_eq!(code, 0, "{err}");
    doc["alert"]["id"].as_str().expect("id").to_owned()
}

/// `update ID` to an orange alert, confirmed: (exit code, stdout, stderr).
fn update_to_orange(p: &Project, id: &str) -> (i32, String, String) {
    let mut args = vec!["update", id];
    args.extend_from_slice(&common::METEO);
    args.push("--yes");
    p.run(&args)
}

#[test]
fn cancelled_and_superseded_alerts_stay_dead() {
    let p = project();
    let original = meteo_all(&p);
    // Pretend deliveries failed, so `retry` would have something to send.
    p.sql("UPDATE deliveries SET state = 'failed' WHERE channel = 'sms' RETURNING id");
    let (code, _, err) = update_to_orange(&p, &original);
    assert!(code == 0 || code == 3, "{err}");
    let update = p
        .sql("SELECT id FROM alerts WHERE msg_type = 'Update'")
        .remove(0);
    for verb in [
        vec!["retry", &original, "--yes"],
        vec!["resume", &original, "--yes"],
    ] {
        let (code, _, err) = p.run(&verb);
        assert_eq!(code, 2, "{verb:?}: {err}");
        assert!(err.contains("superseded"), "{err}");
        assert!(err.contains(&update), "says what to act on: {err}");
    }

    let (code, _, err) = p.run(&["cancel", &update, "--yes"]);
    assert_eq!(code, 0, "{err}");
    let before = all_outbox(&p).len();
    for id in [&original, &update] {
        for verb in ["retry", "resume"] {
            let (code, _, err) = p.run(&[verb, id, "--yes"]);
            assert_eq!(code, 2, "{verb} {id}: {err}");
            assert!(err.contains("cancelled"), "{err}");
        }
    }
    assert_eq!(
        all_outbox(&p).len(),
        before,
        "nothing re-sent after the cancel"
    );
}

#[test]
fn cancel_by_any_id_of_the_thread_references_every_message() {
    let p = project();
    let original = meteo_all(&p);
    let (code, _, err) = update_to_orange(&p, &original);
    assert_eq!(code, 0, "{err}");
    let update = p
        .sql("SELECT id FROM alerts WHERE msg_type = 'Update'")
        .remove(0);
    // The officer types the id they remember: the original's.
    let (code, _, err) = p.run(&["cancel", &original, "--yes"]);
    assert_eq!(code, 0, "{err}");
    let refs = p
        .sql("SELECT refs FROM alerts WHERE msg_type = 'Cancel'")
        .remove(0);
    let refs: Vec<String> = serde_json::from_str(&refs).unwrap();
    assert_eq!(refs, [original.clone(), update.clone()]);
    let (_, doc, _) = p.json(&["status", &original]);
    assert_eq!(doc["alert"]["state"], "cancelled");
    assert_eq!(doc["alert"]["thread_id"], original.as_str());
    // The revocation reached those the original reached, once each.
    let cancel = p
        .sql("SELECT id FROM alerts WHERE msg_type = 'Cancel'")
        .remove(0);
    let sms: Vec<_> = p
        .outbox("sms")
        .into_iter()
        .filter(|l| l["alert_id"] == cancel.as_str())
        .collect();
    assert_eq!(sms.len(), 3);
}

#[test]
fn a_transport_switched_since_planning_makes_resume_refuse() {
    let (p, child) = running_send(300, 20, &[]);
    signal(&child, libc::SIGTERM);
    finish(child);
    let id = p.sql("SELECT id FROM alerts").remove(0);
    // The training alert was planned on the outbox; now the real gateway.
    let config = std::fs::read_to_string(p.path("allerta.toml")).unwrap().replace(
        "[channels.sms]\ntransport = \"outbox\"",
        "[channels.sms]\ntransport = \"kannel\"\nurl = \"http://127.0.0.1:9/cgi-bin/sendsms\"\nusername = \"u\"\npassword = \"p\"\nsender = \"X\"",
    );
    p.write("allerta.toml", &config);
    for cmd in [
        vec!["resume"],
        vec!["resume", id.as_str(), "--yes"],
        vec!["retry", id.as_str(), "--yes"],
    ] {
        let (code, _, err) = p.run(&cmd);
        assert_eq!(code, 2, "{cmd:?}: {err}");
        assert!(err.contains("planned on `outbox`, now `kannel`"), "{err}");
    }
    assert_eq!(p.sql("SELECT state FROM alerts"), ["sending"]);
}

fn approval_project() -> Project {
    let p = project();
    let config = std::fs::read_to_string(p.path("allerta.toml")).unwrap();
    p.write(
        "allerta.toml",
        &format!("{config}\n[approval]\nstatuses = [\"Actual\"]\napprovers = [\"daemon\", \"bin\"]\ntimeout = \"15m\"\n"),
    );
    p
}

/// Runs as if `sudo` had been used by the OS user with this uid (the
/// tests run as root, where allerta trusts sudo's SUDO_UID).
fn as_user(p: &Project, uid: &str, args: &[&str]) -> (i32, String, String) {
    let out = p
        .cmd()
        .env("SUDO_UID", uid)
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const DAEMON: &str = "1";
const BIN: &str = "2";
const SYS: &str = "3";
const NOBODY: &str = "65534";

#[test]
fn two_person_rule_holds_the_alert_until_another_approver_approves() {
    let p = approval_project();
    let send = args(&EVACUAZIONE, &["--all", "--yes"]);
    let (code, out, err) = as_user(&p, DAEMON, &send);
    assert_eq!(code, 0, "{err}");
    let id = p.sql("SELECT id FROM alerts").remove(0);
    assert!(out.contains(&format!("allerta approve {id}")), "{out}");
    assert_eq!(p.sql("SELECT state FROM alerts"), ["awaiting_approval"]);
    assert!(all_outbox(&p).is_empty(), "nothing before approval");
    // Nothing sends it but an approval: not the timer.
    assert_eq!(as_user(&p, DAEMON, &["resume"]).0, 0);
    assert!(all_outbox(&p).is_empty());

    // The creator cannot approve, even under another --operator name.
    let (code, _, err) = as_user(&p, DAEMON, &["--operator", "bin", "approve", &id, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("creator"), "{err}");
    // Nor can someone who is not an approver.
    let (code, _, err) = as_user(&p, NOBODY, &["approve", &id, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an approver"), "{err}");
    // Approving asks like send.
    let (code, _, err) = as_user(&p, BIN, &["approve", &id]);
    assert_eq!(code, 4, "{err}");
    assert!(all_outbox(&p).is_empty());

    let (code, _, err) = as_user(&p, BIN, &["approve", &id, "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(p.outbox("sms").len(), 3);
    assert_eq!(
        p.sql("SELECT state || ' ' || creator || ' ' || decided_by FROM alerts"),
        ["settled daemon bin"]
    );
}

#[test]
fn a_rejected_or_timed_out_alert_is_never_sent() {
    let p = approval_project();
    let send = args(&EVACUAZIONE, &["--all", "--yes"]);
    assert_eq!(as_user(&p, DAEMON, &send).0, 0);
    let id = p.sql("SELECT id FROM alerts").remove(0);
    let (code, _, err) = as_user(&p, BIN, &["reject", &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        p.sql(&format!("SELECT state FROM alerts WHERE id = '{id}'")),
        ["rejected"]
    );
    let (code, _, err) = as_user(&p, BIN, &["approve", &id, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rejected"), "{err}");

    // Someone who is not an approver may withdraw their own alert, and only
    // their own.
    assert_eq!(as_user(&p, NOBODY, &send).0, 0);
    let own = p
        .sql("SELECT id FROM alerts ORDER BY rowid DESC LIMIT 1")
        .remove(0);
    let (code, _, err) = as_user(&p, SYS, &["reject", &own]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an approver"), "{err}");
    let (code, _, err) = as_user(&p, NOBODY, &["reject", &own]);
    assert_eq!(code, 0, "{err}");

    // A short timeout, then the timer's resume ends it.
    let config = std::fs::read_to_string(p.path("allerta.toml"))
        .unwrap()
        .replace("15m", "1s");
    p.write("allerta.toml", &config);
    assert_eq!(as_user(&p, DAEMON, &send).0, 0);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(as_user(&p, DAEMON, &["resume"]).0, 0);
    assert_eq!(
        p.sql("SELECT state FROM alerts ORDER BY rowid"),
        ["rejected", "rejected", "rejected"]
    );
    assert!(all_outbox(&p).is_empty(), "nothing was ever sent");
    let skipped = p.sql("SELECT COUNT(*) FROM deliveries WHERE state != 'skipped'");
    assert_eq!(skipped, ["0"]);
}

#[test]
fn the_audit_trail_is_hash_chained_and_verify_finds_the_edited_row() {
    let p = project();
    meteo_all(&p);
    let (code, _, err) = p.run(&["send", "esercitazione", "--drill"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = p.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, doc, _) = p.json(&["audit"]);
    assert_eq!(code, 0);
    let rows = doc["audit"].as_array().expect("rows");
    assert!(rows.len() >= 2);
    assert_eq!(rows[1]["prev_hash"], rows[0]["hash"]);

    p.sql("UPDATE audit SET operator = 'someone-else' WHERE id = 1 RETURNING id");
    let (code, _, err) = p.run(&["audit", "verify"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("row 1"), "{err}");
}

#[test]
fn cancel_wins_over_a_live_sender_which_stops_at_its_next_claim() {
    let n = 400;
    let (p, sender) = running_send(n, 20, &[]);
    let id = p.sql("SELECT id FROM alerts").remove(0);
    // No lease needed: the cancel goes through while the sender runs.
    let (code, _, err) = p.run(&["cancel", &id, "--yes"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = finish(sender);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cancelled"), "{err}");
    let original: Vec<_> = p
        .outbox("sms")
        .into_iter()
        .filter(|l| l["alert_id"] == id.as_str())
        .collect();
    assert!(
        original.len() < n,
        "the sender stopped ({} of {n})",
        original.len()
    );
    assert_eq!(
        p.sql(&format!("SELECT COUNT(*) FROM deliveries WHERE alert_id = '{id}' AND state IN ('pending', 'sending')")),
        ["0"],
        "nothing of the cancelled alert is left to send"
    );
    assert_eq!(
        p.sql(&format!("SELECT state FROM alerts WHERE id = '{id}'")),
        ["cancelled"]
    );
    // Nobody the original reached misses the revocation. (The cancel may
    // have been planned while a last send was in flight: it goes to those
    // `sending` too, so it can reach one more than the original did.)
    let revoked: std::collections::HashSet<String> = p
        .outbox("sms")
        .into_iter()
        .filter(|l| l["alert_id"] != id.as_str())
        .map(|l| l["to"].as_str().unwrap_or_default().to_owned())
        .collect();
    for l in &original {
        assert!(
            revoked.contains(l["to"].as_str().unwrap_or_default()),
            "{l}"
        );
    }
    // And the timer never sends the cancelled alert's remainder.
    assert_eq!(p.run(&["resume"]).0, 0);
    assert_eq!(
        p.outbox("sms")
            .iter()
            .filter(|l| l["alert_id"] == id.as_str())
            .count(),
        original.len()
    );
}

/// Runs allerta on a real pseudo-terminal and types `answer` at the prompt.
fn on_terminal(p: &Project, answer: &str, args: &[&str]) -> (i32, String) {
    let transcript = p.path("terminal.txt");
    let status = std::process::Command::new("/usr/bin/python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/servers/pty_answer.py"
        ))
        .args(["Type 'si' or 'yes'", answer])
        .arg(&transcript)
        .arg("--")
        .arg(assert_cmd::cargo::cargo_bin("allerta"))
        .arg("--config")
        .arg(p.path("allerta.toml"))
        .args(args)
        .current_dir(p.dir.path())
        .status()
        .expect("python3 pty");
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(&transcript).unwrap_or_default(),
    )
}

#[test]
fn on_a_terminal_the_screen_names_the_status_in_capitals_and_waits_for_a_typed_yes() {
    let p = project();
    let (code, screen) = on_terminal(&p, "no", &args(&EVACUAZIONE, &["--test", "--all"]));
    assert_eq!(code, 4, "{screen}");
    assert!(screen.contains("TEST — new alert"), "{screen}");
    assert!(screen.contains("[TEST]"), "{screen}");
    assert!(all_outbox(&p).is_empty(), "declined: nothing sent");

    let (code, screen) = on_terminal(&p, "si", &args(&EVACUAZIONE, &["--all"]));
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("REAL ALERT (ACTUAL)"), "{screen}");
    assert_eq!(p.outbox("sms").len(), 3);
}
