//! The installed system's safety at the CLI (SPEC §13): what a file, a
//! provider or a spreadsheet could turn against the office. The real
//! binary on throwaway projects.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Project;

const OUTBOX: &str = r#"
[channels.sms]
transport = "outbox"
[channels.email]
transport = "outbox"
from = "Protezione Civile <pc@comune.example.it>"
"#;

fn sent_project() -> (Project, String) {
    let p = Project::new(OUTBOX);
    p.contacts(
        "cittadini.csv",
        &["anna,Anna,+39 333 000 0001,anna@example.org,,centro,cittadini,it,".into()],
    );
    let (code, doc, err) = p.json(&[
        "send",
        "interruzione-acqua",
        "--var",
        "zona=via Roma",
        "--var",
        "quando=oggi",
        "--all",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    let id = doc["alert"]["id"].as_str().expect("id").to_owned();
    (p, id)
}

/// Writes what a hostile provider could have answered into the ledger.
fn provider_said(p: &Project, error: &str, provider_id: &str) {
    let conn = rusqlite::Connection::open(p.path("allerta.db")).expect("open");
    conn.execute(
        "UPDATE deliveries SET state = 'failed', last_error = ?1, provider_id = ?2",
        [error, provider_id],
    )
    .expect("update");
}

#[test]
fn export_csv_neutralises_formula_cells() {
    let (p, id) = sent_project();
    provider_said(
        &p,
        "=HYPERLINK(\"http://evil.example/\",\"click\")",
        "@SUM(1+1)",
    );

    let (code, csv, err) = p.run(&["export", &id, "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert!(!rows.is_empty(), "{csv}");
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "formula cell {cell:?} in\n{csv}"
            );
        }
    }
    assert!(csv.contains("'=HYPERLINK("), "{csv}");
    assert!(csv.contains("'@SUM(1+1)"), "{csv}");
    // Phone numbers (E.164 starts with +) are kept, behind the quote.
    assert!(csv.contains("'+393330000001"), "{csv}");
}

#[test]
fn provider_text_reaches_the_terminal_without_control_characters() {
    let (p, id) = sent_project();
    provider_said(
        &p,
        "rejected\x1b]0;pwned\x07\x1b[2J\rall good",
        "id\x1b[31m",
    );

    for args in [
        vec!["status", id.as_str(), "--failed"],
        vec!["status", id.as_str(), "--deliveries"],
    ] {
        let (_, out, err) = p.run(&args);
        assert!(out.contains("rejected"), "{args:?}: {out}\n{err}");
        for line in out.lines() {
            assert!(
                !line.chars().any(char::is_control),
                "{args:?}: control character in {line:?}"
            );
        }
    }
}

#[test]
fn the_database_wal_and_outbox_are_created_without_world_access() {
    let (p, _) = sent_project();
    for rel in [
        "allerta.db",
        "allerta.db-wal",
        "allerta.db-shm",
        "outbox/sms.jsonl",
        "outbox/email.jsonl",
        "outbox",
    ] {
        let path = p.path(rel);
        let Ok(meta) = std::fs::metadata(&path) else {
            // SQLite removes -wal/-shm when the last connection closes.
            assert!(
                rel.ends_with("-wal") || rel.ends_with("-shm"),
                "{rel} missing"
            );
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode & 0o007, 0, "{rel} has world access: {mode:o}");
    }
    let db = std::fs::metadata(p.path("allerta.db")).expect("db");
    assert_eq!(
        db.permissions().mode() & 0o770,
        0o660,
        "the office's group shares the database"
    );
}

#[test]
fn a_config_others_may_write_in_the_current_directory_is_ignored() {
    let p = Project::new(OUTBOX);
    let config = p.path("allerta.toml");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = p
        .cmd_without_config()
        .args(["list"])
        .output()
        .expect("run allerta");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ignoring ./allerta.toml"), "{err}");
    assert!(
        !p.path("allerta.db").exists(),
        "the planted config was used"
    );

    // The user's own file, writable only by them, is used.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = p
        .cmd_without_config()
        .args(["list"])
        .output()
        .expect("run allerta");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("ignoring"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn a_credentials_file_passed_as_config_is_not_printed() {
    let p = Project::new(OUTBOX);
    p.write(
        "credentials/telegram-token",
        "123456789:AAH-the-real-bot-token\n",
    );
    for args in [["list"], ["check"]] {
        let out = p
            .cmd_without_config()
            .args(["--config", "credentials/telegram-token"])
            .args(args)
            .output()
            .expect("run allerta");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(
            stdout.contains("line 1") || stderr.contains("line 1"),
            "{stdout}{stderr}"
        );
        assert!(
            !stdout.contains("the-real-bot-token") && !stderr.contains("the-real-bot-token"),
            "{args:?} printed the token: {stdout}{stderr}"
        );
    }
}

/// The same for the voice and social secrets the package now keeps in
/// /etc/allerta/credentials, in the shapes the providers issue them (a
/// Twilio auth token, a Facebook Page token, a Mastodon token, a Bluesky
/// app password, which is even a valid TOML key): none is ever echoed.
#[test]
fn a_voice_or_social_credential_passed_as_config_is_not_printed() {
    let p = Project::new(OUTBOX);
    for (name, secret) in [
        ("voice-token", "9f3c0a17e2b84d6c8a5e1f0b2c3d4e5f"),
        ("facebook-token", "EAAGm0PX4ZCpsBAKZCZCsecretpagetoken"),
        ("mastodon-token", "Zx8-mastodon_secret-Qw3rTy9uIoP"),
        ("bluesky-password", "wxyz-secr-etap-pass"),
    ] {
        let rel = format!("credentials/{name}");
        p.write(&rel, &format!("{secret}\n"));
        for args in [["list"], ["check"]] {
            let out = p
                .cmd_without_config()
                .args(["--config", &rel])
                .args(args)
                .output()
                .expect("run allerta");
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert_eq!(
                out.status.code(),
                Some(2),
                "{name} {args:?}: {stdout}{stderr}"
            );
            assert!(
                stdout.contains("line 1") || stderr.contains("line 1"),
                "{name}: {stdout}{stderr}"
            );
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{name} {args:?} printed the secret: {stdout}{stderr}"
            );
        }
    }
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn check_line(out: &str, item: &str) -> String {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(item))
        .unwrap_or_else(|| panic!("no {item} line in:\n{out}"))
        .to_owned()
}

#[test]
fn check_creates_nothing() {
    let p = Project::new(&format!(
        "{OUTBOX}[channels.banner]\ntransport = \"files\"\noutput_dir = \"www/public\"\npublic_url = \"https://www.comune.example.it/allerta/\"\n"
    ));
    p.contacts(
        "cittadini.csv",
        &["anna,Anna,+39 333 000 0001,anna@example.org,,centro,cittadini,it,".into()],
    );
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    p.write(
        "allerta.toml",
        &config
            .replace(
                "database = \"allerta.db\"",
                "database = \"state/allerta.db\"",
            )
            .replace("outbox_dir = \"outbox\"", "outbox_dir = \"spool/outbox\""),
    );
    let (code, out, err) = p.run(&["check"]);
    assert_eq!(code, 0, "{out}{err}");
    for rel in ["state", "spool", "www"] {
        assert!(!p.path(rel).exists(), "check created {rel}:\n{out}");
    }
    assert!(
        check_line(&out, "database").contains("not created yet"),
        "{out}"
    );
}

#[test]
fn check_fails_on_a_world_readable_database() {
    let (p, _) = sent_project();
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, 0, "{out}");
    std::fs::set_permissions(p.path("allerta.db"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    let db = check_line(&out, "database");
    assert!(db.starts_with("FAIL") && db.contains("world"), "{db}");
}

#[test]
fn check_fails_on_a_database_wal_owned_by_another_user_than_its_directory() {
    if !running_as_root() {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        eprintln!("note: not root, cannot create files owned by another user");
        return;
    }
    let (p, _) = sent_project();
    // As after root ran a command in /var/lib/allerta: the directory is the
    // service user's, a WAL file root's.
    let status = std::process::Command::new("chown")
        .args(["nobody"])
        .arg(p.path(""))
        .arg(p.path("allerta.db"))
        .status()
        .expect("chown");
    assert!(status.success());
    p.write("allerta.db-wal", "");
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    let db = check_line(&out, "database");
    assert!(
        db.starts_with("FAIL")
            && db.contains("allerta.db-wal")
            && db.contains("owned by user id 0"),
        "{db}"
    );
}

#[test]
fn an_erased_chat_id_stays_neither_in_the_database_file_nor_in_the_outbox() {
    const CHAT: &str = "987654321";
    let p = Project::new("[channels.telegram]\ntransport = \"outbox\"\n");
    p.contacts(
        "cittadini.csv",
        &[
            format!("anna,Anna,,,{CHAT},centro,cittadini,it,"),
            "bruno,Bruno,,,123123123,centro,cittadini,it,".into(),
        ],
    );
    let (code, _, err) = p.run(&[
        "send",
        "interruzione-acqua",
        "--var",
        "zona=via Roma",
        "--var",
        "quando=oggi",
        "--all",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    let holds = |rel: &str| {
        std::fs::read(p.path(rel))
            .map(|b| b.windows(CHAT.len()).any(|w| w == CHAT.as_bytes()))
            .unwrap_or(false)
    };
    assert!(holds("outbox/telegram.jsonl"));
    let outbox_len = std::fs::metadata(p.path("outbox/telegram.jsonl"))
        .expect("outbox")
        .len();

    let (code, out, err) = p.run(&["subscribers", "forget", CHAT]);
    assert_eq!(code, 0, "{out}{err}");

    for rel in ["allerta.db", "allerta.db-wal", "outbox/telegram.jsonl"] {
        assert!(!holds(rel), "{rel} still holds the erased chat id");
    }
    // The other recipient's line is intact, and every offset (the provider
    // ids) still points at the same line.
    let lines = p.outbox("telegram");
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().any(|l| l["to"] == "123123123"));
    assert_eq!(
        std::fs::metadata(p.path("outbox/telegram.jsonl"))
            .expect("outbox")
            .len(),
        outbox_len
    );
}

#[test]
fn the_officers_sudo_wrapper_refuses_another_config() {
    let wrapper =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/allerta-officer");
    for args in [
        vec![
            "--config",
            "/etc/allerta/credentials/telegram-token",
            "list",
        ],
        vec!["list", "--config=/etc/allerta/credentials/telegram-token"],
        vec!["--config", "/etc/allerta/credentials/voice-token", "check"],
        vec![
            "status",
            "--config=/etc/allerta/credentials/bluesky-password",
        ],
    ] {
        let out = std::process::Command::new("/bin/sh")
            .arg(&wrapper)
            .args(&args)
            .output()
            .expect("run the wrapper");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--config is not allowed"));
    }
}

#[test]
fn check_fails_on_a_world_readable_outbox_file_and_warns_on_open_contacts() {
    let (p, _) = sent_project();
    std::fs::set_permissions(p.path("contacts"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        check_line(&out, "contacts").contains("world-readable"),
        "{out}"
    );

    std::fs::set_permissions(
        p.path("outbox/sms.jsonl"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    let outbox = check_line(&out, "outbox");
    assert!(
        outbox.starts_with("FAIL") && outbox.contains("sms.jsonl"),
        "{outbox}"
    );
}

#[test]
fn check_fails_on_a_weak_delivery_report_token() {
    let (p, _) = sent_project();
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    p.write(
        "allerta.toml",
        &format!("{config}\n[serve]\nlisten = \"127.0.0.1:1\"\ndlr_token_file = \"dlr-token\"\n"),
    );
    for (content, why) in [("", "empty"), ("shorttoken\n", "too short")] {
        p.write("dlr-token", content);
        let (code, out, _) = p.run(&["check"]);
        assert_eq!(code, 1, "{out}");
        let token = check_line(&out, "dlr_token");
        assert!(token.starts_with("FAIL") && token.contains(why), "{token}");
        assert!(
            !token.contains("shorttoken"),
            "the token was printed: {token}"
        );
    }
    p.write("dlr-token", "0123456789abcdefXYZ\n");
    let (_, out, _) = p.run(&["check"]);
    assert!(check_line(&out, "dlr_token").starts_with("ok"), "{out}");
}
