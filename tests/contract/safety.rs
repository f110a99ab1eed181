//! The alert layer's rules (SPEC §11, §12): the two-person rule, Ctrl-C and
//! SIGTERM, a switched transport, rows left out, `list --since`.

use super::*;

// ---------------------------------------------------------------------
// The two-person rule
// ---------------------------------------------------------------------

/// Runs as if `sudo` had been used by the OS user with this uid (the tests
/// run as root, where allerta trusts sudo's SUDO_UID; uid 1 is `daemon`,
/// 2 is `bin`, 65534 is `nobody`).
pub fn as_user(p: &Project, uid: &str, args: &[&str]) -> (i32, String, String) {
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

pub const DAEMON: &str = "1";
pub const BIN: &str = "2";
pub const NOBODY: &str = "65534";

pub fn two_person_rule_holds_the_alert_until_another_approver_decides(backend: &Backend) {
    if !nix_uid_is_root() {
        eprintln!("SKIPPED: the two-person rule needs root (SUDO_UID is trusted only from root)");
        return;
    }
    let p = citizens(backend);
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    p.write(
        "allerta.toml",
        &format!("{config}\n[approval]\nstatuses = [\"Actual\"]\napprovers = [\"daemon\", \"bin\"]\ntimeout = \"15m\"\n"),
    );
    let send = meteo_send(&["--all", "--yes"]);
    let (code, out, err) = as_user(&p, DAEMON, &send);
    assert_eq!(code, 0, "{err}");
    let id = alerts(&p)[0]["id"].as_str().expect("id").to_owned();
    assert!(out.contains(&format!("allerta approve {id}")), "{out}");
    assert_eq!(alerts(&p)[0]["state"], "awaiting_approval");
    assert_eq!(all_outbox(&p), 0, "nothing before approval");
    // Not the timer: only an approval sends it.
    assert_eq!(as_user(&p, DAEMON, &["resume"]).0, 0);
    assert_eq!(all_outbox(&p), 0);
    // The creator cannot approve, even under another --operator name, nor
    // can someone who is not an approver; approving asks like send.
    let (code, _, err) = as_user(&p, DAEMON, &["--operator", "bin", "approve", &id, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("creator"), "{err}");
    let (code, _, err) = as_user(&p, NOBODY, &["approve", &id, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an approver"), "{err}");
    let (code, _, err) = as_user(&p, BIN, &["approve", &id]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(all_outbox(&p), 0);

    let (code, _, err) = as_user(&p, BIN, &["approve", &id, "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(outbox_to(&p, "sms", &id).len(), 3);
    let status = ok_json(&p, &["status", &id]);
    assert_eq!(status["alert"]["state"], "settled", "{status}");
    assert_eq!(status["alert"]["creator"], "daemon", "{status}");
    assert_eq!(status["alert"]["decided_by"], "bin", "{status}");

    // A second alert, rejected: never sent, every delivery skipped.
    assert_eq!(as_user(&p, DAEMON, &send).0, 0);
    let second = alerts(&p)[0]["id"].as_str().expect("id").to_owned();
    assert_ne!(second, id);
    let (code, _, err) = as_user(&p, BIN, &["reject", &second]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = as_user(&p, BIN, &["approve", &second, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rejected"), "{err}");
    let status = ok_json(&p, &["status", &second]);
    assert_eq!(status["alert"]["state"], "rejected", "{status}");
    for (channel, counts) in status["channels"].as_object().expect("channels") {
        assert_eq!(counts["skipped"], counts["total"], "{channel}: {status}");
    }
    assert!(outbox_to(&p, "sms", &second).is_empty());
    audit_is_whole(&p, &["send", "approve", "send", "reject"]);
}

pub fn nix_uid_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
// ---------------------------------------------------------------------
// Stopping a send: Ctrl-C (paused) and SIGTERM (left to the timer)
// ---------------------------------------------------------------------

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

pub fn sms_to_all(p: &Project) -> Vec<String> {
    p.outbox("sms")
        .iter()
        .map(|l| l["to"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub fn ctrl_c_pauses_and_only_resume_with_its_id_and_a_confirmation_finishes(backend: &Backend) {
    let n = 300;
    let p = slow_sms(backend, n, 100);
    let child = spawn(&p, &meteo_send(&["--all", "--channel", "sms", "--yes"]));
    wait_for("30 messages out", Duration::from_secs(30), || {
        (p.outbox("sms").len() >= 30).then_some(())
    });
    signal(&child, libc::SIGINT);
    let (code, err) = finish(child);
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("PAUSED"), "{err}");
    let id = alerts(&p)[0]["id"].as_str().expect("id").to_owned();
    assert!(err.contains(&format!("allerta resume {id}")), "{err}");
    assert!(err.contains(&format!("allerta cancel {id}")), "{err}");
    assert_eq!(alerts(&p)[0]["state"], "paused");
    let sent = p.outbox("sms").len();
    assert!(sent < n, "the pause stopped the send ({sent} of {n})");

    // The timer never touches a paused alert; `resume ID` asks.
    let (code, out, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(p.outbox("sms").len(), sent, "the timer sent a paused alert");
    let (code, _, err) = p.run(&["resume", &id]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(p.outbox("sms").len(), sent);
    let (code, _, err) = p.run(&["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{err}");
    let mut to = sms_to_all(&p);
    assert_eq!(to.len(), n, "everyone exactly once after the resume");
    to.sort();
    to.dedup();
    assert_eq!(to.len(), n, "no duplicates");
    let status = ok_json(&p, &["status", &id]);
    assert_eq!(status["alert"]["state"], "settled", "{status}");
    assert_eq!(status["channels"]["sms"]["sent"], n, "{status}");
    audit_is_whole(&p, &["send", "resume"]);
}

pub fn sigterm_leaves_it_to_the_timer_which_refuses_a_switched_transport(backend: &Backend) {
    let n = 300;
    let p = slow_sms(backend, n, 100);
    let child = spawn(&p, &meteo_send(&["--all", "--channel", "sms", "--yes"]));
    wait_for("20 messages out", Duration::from_secs(30), || {
        (p.outbox("sms").len() >= 20).then_some(())
    });
    signal(&child, libc::SIGTERM);
    let (code, err) = finish(child);
    assert_eq!(code, 1, "{err}");
    let id = alerts(&p)[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(alerts(&p)[0]["state"], "sending");
    let sent = p.outbox("sms").len();
    assert!(sent < n, "SIGTERM stopped the send ({sent} of {n})");

    // Planned on the outbox, now a real gateway: nothing may go out.
    let outbox = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    p.write(
        "allerta.toml",
        &outbox.replace(
            "[channels.sms]\ntransport = \"outbox\"",
            "[channels.sms]\ntransport = \"kannel\"\nurl = \"http://127.0.0.1:9/cgi-bin/sendsms\"\nusername = \"u\"\npassword = \"p\"\nsender = \"X\"",
        ),
    );
    for cmd in [
        vec!["resume"],
        vec!["resume", id.as_str(), "--yes"],
        vec!["retry", id.as_str(), "--yes"],
    ] {
        let (code, _, err) = p.run(&cmd);
        assert_eq!(code, 2, "{cmd:?}: {err}");
        assert!(err.contains("planned on `outbox`, now `kannel`"), "{err}");
    }
    assert_eq!(p.outbox("sms").len(), sent);
    assert_eq!(alerts(&p)[0]["state"], "sending");

    // Back on the outbox, the timer finishes it: nobody lost.
    p.write("allerta.toml", &outbox);
    let (code, _, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{err}");
    let to: HashSet<String> = sms_to_all(&p).into_iter().collect();
    assert_eq!(to.len(), n, "everyone reached");
    let status = ok_json(&p, &["status", &id]);
    assert_eq!(status["alert"]["state"], "settled", "{status}");
    assert_eq!(status["channels"]["sms"]["sent"], n, "{status}");
}
// ---------------------------------------------------------------------
// Contact rows left out, and `list --since`
// ---------------------------------------------------------------------

pub fn skipped_rows_are_recorded_and_list_since_filters(backend: &Backend) {
    let p = citizens(backend);
    p.contacts("errori.csv", &["zz,Zeta,12,,,centro,cittadini,it,".into()]);
    // A bad row blocks the send (exit 2, nothing planned or sent)...
    let (code, _, err) = p.run(&meteo_send(&["--all", "--yes"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("errori.csv:2"), "file and line: {err}");
    assert!(alerts(&p).is_empty());
    assert_eq!(all_outbox(&p), 0);
    // ...unless it is left out on purpose, which the alert records.
    let first = ok_json(&p, &meteo_send(&["--all", "--yes", "--skip-invalid"]));
    let skipped = first["alert"]["skipped_rows"].to_string();
    assert!(
        skipped.contains("errori.csv") && skipped.contains('2'),
        "{first}"
    );
    assert_eq!(first["channels"]["sms"]["sent"], 3, "{first}");
    let first = id_of(&first);
    std::thread::sleep(Duration::from_millis(1100));
    let since = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(Duration::from_millis(100));
    let second = id_of(&ok_json(
        &p,
        &["send", "esercitazione", "--drill", "--skip-invalid"],
    ));
    let all: Vec<Value> = alerts(&p);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["id"], second.as_str(), "newest first");
    assert_eq!(all[1]["id"], first.as_str());
    let recent = ok_json(&p, &["list", "--since", &since]);
    let recent: Vec<&str> = recent["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(recent, [second.as_str()]);
    audit_is_whole(&p, &["send", "send"]);
}
