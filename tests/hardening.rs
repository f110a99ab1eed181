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
