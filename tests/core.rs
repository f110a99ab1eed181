//! The pipeline end to end on the outbox transport: the real binary, a real
//! SQLite ledger, real files.

mod common;

use common::{METEO, OUTBOX_CHANNELS, Project, synthetic_rows};

fn project_with_citizens() -> Project {
    let p = Project::new(OUTBOX_CHANNELS);
    p.contacts(
        "cittadini.csv",
        &[
            "anna,Anna Bianchi,333 000 0001,anna@example.org,100000001,centro,cittadini,it,".into(),
            "bob,Bob Smith,+39 333 000 0002,bob@example.org,,fibbiana,cittadini,en,sms;email"
                .into(),
            "carla,Carla Verdi,3330000003,,100000003,centro,esercitazione,it,".into(),
        ],
    );
    // Anna again in a second list: one delivery per address.
    p.contacts(
        "volontari.csv",
        &["anna-vol,Anna Bianchi,+393330000001,ANNA@EXAMPLE.ORG,,centro,volontari,it,".into()],
    );
    p
}

#[test]
fn send_fans_out_to_every_channel_once_per_address() {
    let p = project_with_citizens();
    let mut args = vec!["send"];
    args.extend(METEO);
    args.extend(["--all", "--yes"]);
    let (code, doc, err) = p.json(&args);
    assert_eq!(code, 0, "{err}");
    let ch = &doc["channels"];
    assert_eq!(ch["sms"]["total"], 3, "{doc}");
    assert_eq!(ch["sms"]["sent"], 3);
    assert_eq!(
        ch["email"]["total"], 2,
        "anna appears twice with the same email: {doc}"
    );
    assert_eq!(ch["telegram"]["total"], 2);
    assert_eq!(ch["banner"]["total"], 1);
    assert_eq!(doc["alert"]["status"], "Actual");
    assert_eq!(doc["alert"]["state"], "settled");
    assert_eq!(doc["alert"]["operator"], "test-officer");

    let sms = p.outbox("sms");
    assert_eq!(sms.len(), 3);
    let to: Vec<&str> = sms.iter().map(|l| l["to"].as_str().unwrap()).collect();
    assert!(
        to.contains(&"+393330000001")
            && to.contains(&"+393330000002")
            && to.contains(&"+393330000003"),
        "{to:?}"
    );
    let bob = sms.iter().find(|l| l["to"] == "+393330000002").unwrap();
    assert_eq!(bob["language"], "en");
    assert!(sms.iter().all(|l| l["alert_id"] == doc["alert"]["id"]));
    let email = p.outbox("email");
    assert_eq!(email.len(), 2);
    let anna = email
        .iter()
        .find(|l| l["to"] == "anna@example.org")
        .expect("anna's email");
    assert!(
        anna["subject"].as_str().unwrap().contains("arancione"),
        "{anna}"
    );
    let bob = email
        .iter()
        .find(|l| l["to"] == "bob@example.org")
        .expect("bob's email");
    assert!(
        bob["subject"].as_str().unwrap().contains("Orange"),
        "English for Bob: {bob}"
    );
    // The banner is not on the real transport here, but it was planned once.
    assert_eq!(p.outbox("banner").len(), 1);
    // Audit trail names the officer and the command.
    assert_eq!(
        p.sql("SELECT operator || ' ' || command FROM audit"),
        vec!["test-officer send"]
    );
}

#[test]
fn drill_goes_to_the_drill_audience_with_the_prefix_everywhere() {
    let p = project_with_citizens();
    let (code, doc, err) = p.json(&["send", "esercitazione", "--drill"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["alert"]["status"], "Exercise");
    // Only carla is in group esercitazione.
    let sms = p.outbox("sms");
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0]["to"], "+393330000003");
    for channel in ["sms", "telegram"] {
        for line in p.outbox(channel) {
            assert!(
                line["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("[ESERCITAZIONE] "),
                "{line}"
            );
            assert_eq!(line["status"], "Exercise");
        }
    }
    // A drill needs no --yes: it never reaches the public.
}

#[test]
fn same_key_twice_creates_one_alert() {
    let p = project_with_citizens();
    let mut args = vec!["send"];
    args.extend(METEO);
    args.extend(["--zone", "centro", "--yes", "--key", "piena-2026-11-26"]);
    let (c1, d1, e1) = p.json(&args);
    let (c2, d2, e2) = p.json(&args);
    assert_eq!((c1, c2), (0, 0), "{e1}\n{e2}");
    assert_eq!(d1["alert"]["id"], d2["alert"]["id"]);
    assert_eq!(p.sql("SELECT COUNT(*) FROM alerts"), vec!["1"]);
    // Nothing sent twice.
    assert_eq!(p.outbox("sms").len(), 2);
}

#[test]
fn actual_alert_without_terminal_or_yes_is_refused_with_exit_4() {
    let p = project_with_citizens();
    let mut args = vec!["send"];
    args.extend(METEO);
    args.push("--all");
    let (code, _, err) = p.run(&args);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert!(p.outbox("sms").is_empty());
}

#[test]
fn dry_run_writes_nothing() {
    let p = project_with_citizens();
    let mut args = vec!["send"];
    args.extend(METEO);
    args.extend(["--all", "--dry-run"]);
    let (code, doc, err) = p.json(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["recipients"]["sms"], 3);
    assert!(
        !p.path("allerta.db").exists(),
        "dry run created the database"
    );
    assert!(!p.path("outbox").exists(), "dry run wrote to the outbox");
}

/// Every bad input: exit 2, a message that says where and why, and nothing
/// written or sent.
#[test]
fn bad_inputs_exit_2_and_send_nothing() {
    let p = project_with_citizens();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "send",
                "allerta-meteo",
                "--var",
                "livelo=rosso",
                "--var",
                "rischio=vento",
                "--var",
                "dalle=ora",
                "--all",
                "--yes",
            ],
            "did you mean `livello`",
        ),
        (
            vec![
                "send",
                "allerta-meteo",
                "--var",
                "livello=viola",
                "--var",
                "rischio=vento",
                "--var",
                "dalle=ora",
                "--all",
                "--yes",
            ],
            "`viola` is not allowed",
        ),
        (
            vec![
                "send",
                "allerta-meteo",
                "--var",
                "rischio=vento",
                "--all",
                "--yes",
            ],
            "missing required variable `livello`",
        ),
        (
            vec!["send", "allerta-meto", "--all", "--yes"],
            "unknown template `allerta-meto`",
        ),
        (
            vec!["send", "esercitazione", "--zone", "centr", "--yes"],
            "unknown zone `centr`",
        ),
        (vec!["send", "esercitazione", "--yes"], "no audience"),
        (
            vec![
                "send",
                "esercitazione",
                "--all",
                "--channel",
                "fax",
                "--yes",
            ],
            "unknown channel `fax`",
        ),
        (
            vec![
                "send",
                "esercitazione",
                "--all",
                "--expires",
                "soon",
                "--yes",
            ],
            "--expires",
        ),
    ];
    for (args, expected) in cases {
        let (code, _, err) = p.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: expected `{expected}` in:\n{err}"
        );
    }
    assert!(p.outbox("sms").is_empty() && p.outbox("email").is_empty());
    let alerts = if p.path("allerta.db").exists() {
        p.sql("SELECT COUNT(*) FROM alerts")
    } else {
        vec!["0".into()]
    };
    assert_eq!(alerts, vec!["0"]);
}

#[test]
fn a_bad_contact_row_is_reported_with_file_and_line_and_blocks_the_send() {
    let p = project_with_citizens();
    let mut rows = synthetic_rows(3, "example.org");
    rows.push("bad,Mario,333 12,mario@example.org,,centro,,it,".into());
    rows.push("bad2,Lucia,333 000 0009,lucia@,,centro,,it,".into());
    rows.push("bad3,Gino,333 000 0010,,,nowhere,,it,".into());
    p.contacts("lista.csv", &rows);
    let (code, out, _) = p.run(&["contacts", "check"]);
    assert_eq!(code, 2);
    assert!(out.contains("lista.csv:5: phone: `333 12`"), "{out}");
    assert!(out.contains("lista.csv:6: email"), "{out}");
    assert!(
        out.contains("lista.csv:7: zones: unknown zone `nowhere`"),
        "{out}"
    );

    let mut args = vec!["send"];
    args.extend(METEO);
    args.extend(["--all", "--yes"]);
    let (code, _, err) = p.run(&args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("lista.csv:5"), "{err}");
    assert!(p.outbox("sms").is_empty());

    // With --skip-invalid the valid rows are sent and the skipped ones recorded.
    args.push("--skip-invalid");
    let (code, doc, err) = p.json(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        doc["alert"]["skipped_rows"].as_array().unwrap().len(),
        3,
        "{doc}"
    );
    assert_eq!(p.outbox("sms").len(), 6);
}

#[test]
fn unknown_config_key_and_missing_secret_are_input_errors() {
    let p = Project::new(
        "[channels.email]\ntransport = \"outbox\"\nfrom = \"a <a@b.it>\"\nmax_conections = 2\n",
    );
    let (code, _, err) = p.run(&["templates", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("max_conections"), "{err}");

    // Secrets are read when a command uses them (SPEC §13: each unit holds
    // only its own credentials): `send` on that channel, not `templates`.
    let p = Project::new(
        "[channels.email]\ntransport = \"smtp\"\nurl = \"smtp://127.0.0.1:1\"\nfrom = \"a <a@b.it>\"\nusername = \"u\"\npassword_env = \"ALLERTA_TEST_NO_SUCH_VAR\"\n",
    );
    p.contacts(
        "c.csv",
        &["anna,Anna,,anna@example.org,,centro,cittadini,it,".into()],
    );
    let (code, _, _) = p.run(&["templates", "list"]);
    assert_eq!(code, 0);
    let (code, _, err) = p.run(&[
        "send",
        "interruzione-acqua",
        "--var",
        "zona=x",
        "--var",
        "quando=y",
        "--all",
        "--yes",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("ALLERTA_TEST_NO_SUCH_VAR"), "{err}");
    assert!(
        !p.path("allerta.db").exists() || p.sql("SELECT COUNT(*) FROM alerts") == ["0"],
        "nothing planned"
    );
}

#[test]
fn preview_shows_what_forced_ucs2_and_the_segments() {
    let p = project_with_citizens();
    let (code, doc, err) = p.json(&[
        "preview",
        "allerta-meteo",
        "--var",
        "livello=rosso",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=È già l’ora",
    ]);
    assert_eq!(code, 0, "{err}");
    let sms = &doc["languages"]["it"]["channels"]["sms"]["sms"];
    assert_eq!(sms["encoding"], "UCS-2", "{sms}");
    let forced: Vec<&str> = sms["ucs2_forced_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(forced.contains(&"È") && forced.contains(&"’"), "{forced:?}");
    assert!(sms["segments"].as_u64().unwrap() >= 2);
}

#[test]
fn an_sms_over_max_segments_is_refused_before_sending() {
    let p = Project::new(&OUTBOX_CHANNELS.replace("max_segments = 3", "max_segments = 1"));
    p.contacts("c.csv", &synthetic_rows(2, "example.org"));
    let (code, _, err) = p.run(&[
        "send",
        "evacuazione",
        "--var",
        "zona=via Roma e via Tosco Romagnola fino al ponte",
        "--var",
        "punto_raccolta=piazza VIII Marzo, palestra comunale",
        "--var",
        "motivo=rischio di esondazione del torrente Pesa",
        "--all",
        "--yes",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exceed max_segments = 1"), "{err}");
    assert!(p.outbox("sms").is_empty());
}

/// `n` contacts and an SMS outbox paced at 200/s, so a send lasts long
/// enough to be killed half way.
fn slow_sms_project(n: usize) -> Project {
    let channels = OUTBOX_CHANNELS.replace(
        "[channels.sms]\ntransport = \"outbox\"",
        "[channels.sms]\ntransport = \"outbox\"\nrate_per_second = 200",
    );
    let p = Project::new(&channels);
    p.contacts("c.csv", &synthetic_rows(n, "example.org"));
    p
}

/// Starts `args` and SIGKILLs it once `lines` SMS are in the outbox.
fn send_and_kill_after(p: &Project, args: &[&str], lines: usize) {
    let mut child = p
        .cmd()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while p.outbox("sms").len() < lines {
        assert!(
            std::time::Instant::now() < deadline,
            "send made no progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// SIGKILL in the middle of a send, then `resume`: everyone gets the
/// message, `sent` is never re-sent, and duplicates are bounded by what was
/// in flight.
#[test]
fn resume_after_sigkill_finishes_the_alert_without_resending_sent() {
    let n = 1000;
    let p = slow_sms_project(n);
    // Kill once a good part went out (the rate makes the send last ~5 s).
    send_and_kill_after(
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
        n / 4,
    );
    let before = p.outbox("sms").len();
    assert!(
        before < n,
        "the send finished before the kill; the test proves nothing"
    );
    let sent_before: Vec<String> =
        p.sql("SELECT id FROM deliveries WHERE state = 'sent' ORDER BY id");

    let (code, doc, err) = p.json(&["resume"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        doc["resumed"][0]["channels"]["sms"]["sent"], n as u64,
        "{doc}"
    );

    let lines = p.outbox("sms");
    let mut per_delivery = std::collections::HashMap::<i64, usize>::new();
    for l in &lines {
        *per_delivery
            .entry(l["delivery_id"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_delivery.len(), n, "someone was never messaged");
    // A delivery recorded `sent` before the kill is never sent again.
    for id in &sent_before {
        assert_eq!(
            per_delivery[&id.parse::<i64>().unwrap()],
            1,
            "delivery {id} was sent, then re-sent"
        );
    }
    // Duplicates: only sends whose outcome was not yet committed (at most
    // the 100 ms batch window at 200/s plus what was in flight).
    let duplicates = lines.len() - n;
    assert!(duplicates <= 64 + 20, "{duplicates} duplicates");
}

#[test]
fn status_list_and_export_report_the_ledger() {
    let p = project_with_citizens();
    let mut args = vec!["send"];
    args.extend(METEO);
    args.extend(["--zone", "fibbiana", "--yes"]);
    let (_, sent, _) = p.json(&args);
    let id = sent["alert"]["id"].as_str().unwrap();
    let (code, list, _) = p.json(&["list"]);
    assert_eq!(code, 0);
    assert_eq!(list["alerts"][0]["id"], id);
    assert_eq!(list["alerts"][0]["channels"]["sms"]["total"], 1);
    let (code, status, _) = p.json(&["status", id, "--deliveries"]);
    assert_eq!(code, 0);
    assert_eq!(
        status["deliveries"].as_array().unwrap().len(),
        3,
        "{status}"
    );
    let (code, csv, _) = p.run(&["export", id, "--format", "csv"]);
    assert_eq!(code, 0);
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .starts_with("id,channel,address")
    );
    let (code, _, err) = p.run(&["status", "nope"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_closed_pipe_ends_a_listing_quietly_without_a_panic() {
    let p = project_with_citizens();
    let mut args = vec!["send"];
    args.extend(METEO);
    args.extend(["--all", "--yes"]);
    assert_eq!(p.run(&args).0, 0);
    // Like `allerta status --deliveries | head -1`: the reader goes away.
    let mut child = p
        .cmd()
        .args(["status", "--deliveries"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// An Update supersedes what the original had not sent yet: nobody gets the
/// outdated text after the new one, and everyone gets the Update.
#[test]
fn an_update_skips_what_the_original_had_not_sent_yet() {
    let n = 600;
    let p = slow_sms_project(n);
    let mut args = vec!["send"];
    args.extend(METEO);
    args.extend(["--all", "--channel", "sms", "--yes"]);
    send_and_kill_after(&p, &args, n / 4);
    let original = p.sql("SELECT id FROM alerts")[0].clone();
    let pending_before: usize = p.sql("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")[0]
        .parse()
        .unwrap();
    assert!(
        pending_before > 0,
        "the original finished before the kill; the test proves nothing"
    );

    let (code, doc, err) = p.json(&[
        "update",
        &original,
        "allerta-meteo",
        "--var",
        "livello=rosso",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ore 18",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["channels"]["sms"]["sent"], n as u64, "{doc}");
    let skipped = p.sql(&format!(
        "SELECT COUNT(*) FROM deliveries WHERE alert_id = '{original}' AND state = 'skipped' AND last_error LIKE 'superseded by update%'"
    ));
    assert_eq!(skipped, vec![pending_before.to_string()]);
    // After the update, the original's old text never goes out again.
    let (code, _, err) = p.run(&["resume"]);
    assert!(code == 0 || code == 3, "{err}");
    let old_lines = p
        .outbox("sms")
        .iter()
        .filter(|l| l["alert_id"] == original.as_str())
        .count();
    assert!(
        old_lines <= n - pending_before + 64,
        "{old_lines} lines of the original"
    );
}

/// A process SIGKILLed in the middle of an outbox write can leave half a
/// line; the next process ends it before its first message, so that
/// message stays whole on its own line (and the torn one never merges with
/// it into one unreadable line).
#[test]
fn a_line_torn_by_a_killed_process_never_swallows_the_next_message() {
    let p = project_with_citizens();
    p.write("outbox/sms.jsonl", "{\"alert_id\":\"old\",\"to\":\"+39333");
    let mut args = vec!["send"];
    args.extend(METEO);
    args.extend(["--all", "--yes"]);
    let (code, _, err) = p.run(&args);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(p.path("outbox/sms.jsonl")).expect("outbox");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "{\"alert_id\":\"old\",\"to\":\"+39333", "{text}");
    assert_eq!(lines.len(), 4, "the torn line, then one per SMS: {text}");
    for line in &lines[1..] {
        serde_json::from_str::<serde_json::Value>(line).expect("a whole message per line");
    }
    assert_eq!(p.outbox("sms").len(), 3);
}
