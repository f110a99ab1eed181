//! Shared test harness: a throwaway project directory (config, the shipped
//! templates, test contacts, database, outbox) and the real `allerta` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

pub const ZONES: &str = r#"
[zones.centro]
name = "Montelupo centro"
[zones.fibbiana]
name = "Fibbiana"
"#;

/// Every channel on the outbox transport.
pub const OUTBOX_CHANNELS: &str = r#"
[channels.telegram]
transport = "outbox"
[channels.sms]
transport = "outbox"
max_segments = 3
[channels.email]
transport = "outbox"
from = "Protezione Civile <pc@comune.example.it>"
unsubscribe_url = "https://comune.example.it/cancellami?t={token}"
[channels.banner]
transport = "outbox"
"#;

/// `allerta-meteo` with every required variable (orange).
pub const METEO: [&str; 7] = [
    "allerta-meteo",
    "--var",
    "livello=arancione",
    "--var",
    "rischio=idraulico",
    "--var",
    "dalle=ore 14 di oggi",
];

/// `send allerta-meteo` (red) to everyone, confirmed: `extra` goes after.
pub fn send_meteo_all<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "send",
        "allerta-meteo",
        "--var",
        "livello=rosso",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ora",
        "--all",
        "--yes",
    ];
    args.extend_from_slice(extra);
    args
}

/// The environment variable `Project::cmd` puts the PostgreSQL password in
/// (`database_password_env` of a project on PostgreSQL).
pub const PG_PASSWORD_ENV: &str = "ALLERTA_TEST_PGPASSWORD";

/// Where a project keeps its ledger (SPEC §18).
pub enum Backend {
    /// `allerta.db` in the project directory.
    Sqlite,
    /// A `postgres://` URL without its password, the password, and the
    /// per-delivery `lease` written to `[general]`.
    Postgres {
        url: String,
        password: String,
        lease: String,
    },
}

/// A project directory with its own config and data.
pub struct Project {
    pub dir: tempfile::TempDir,
    /// The PostgreSQL password `cmd` passes in `PG_PASSWORD_ENV`.
    db_password: Option<String>,
}

impl Project {
    /// `channels` is the TOML of the `[channels.*]` sections (and anything
    /// else appended to the config). The ledger is `allerta.db`.
    pub fn new(channels: &str) -> Self {
        Self::with_database(channels, &Backend::Sqlite)
    }

    /// As `new`, with the ledger on `backend`.
    pub fn with_database(channels: &str, backend: &Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (database, db_password) = match backend {
            Backend::Sqlite => ("database = \"allerta.db\"".to_owned(), None),
            Backend::Postgres {
                url,
                password,
                lease,
            } => (
                format!(
                    "database = \"{url}\"\ndatabase_password_env = \"{PG_PASSWORD_ENV}\"\nlease = \"{lease}\""
                ),
                Some(password.clone()),
            ),
        };
        let config = format!(
            r#"[general]
{database}
templates_dir = "{templates}"
contacts_dir = "contacts"
outbox_dir = "outbox"
sender = "Comune di Prova - Protezione Civile"
sender_id = "pc@comune.example.it"
{ZONES}
[drill]
audience = ["group:esercitazione"]
prefix = "[ESERCITAZIONE]"

[retry]
max_attempts = 4
initial_backoff = "200ms"
max_backoff = "1s"

{channels}
"#,
            templates = repo.join("templates").display()
        );
        std::fs::write(dir.path().join("allerta.toml"), config).expect("write config");
        std::fs::create_dir_all(dir.path().join("contacts")).expect("contacts dir");
        Self { dir, db_password }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
    }

    /// Writes `contacts/<name>` with the standard header and these rows.
    pub fn contacts(&self, name: &str, rows: &[String]) {
        let mut text =
            String::from("id,name,phone,email,telegram_chat_id,zones,groups,language,channels\n");
        for r in rows {
            text.push_str(r);
            text.push('\n');
        }
        self.write(&format!("contacts/{name}"), &text);
    }

    /// The binary with `--config` set, run from the project directory.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("allerta").expect("allerta binary");
        c.current_dir(self.dir.path())
            .arg("--config")
            .arg(self.path("allerta.toml"))
            .env_remove("ALLERTA_CONFIG")
            .env("USER", "test-officer")
            .stdin(Stdio::null());
        if let Some(password) = &self.db_password {
            c.env(PG_PASSWORD_ENV, password);
        }
        c
    }

    /// The binary run from the project directory without `--config` or
    /// `$ALLERTA_CONFIG` (the lookup of SPEC §2).
    pub fn cmd_without_config(&self) -> Command {
        let mut c = Command::cargo_bin("allerta").expect("allerta binary");
        c.current_dir(self.dir.path())
            .env_remove("ALLERTA_CONFIG")
            .env("USER", "test-officer")
            .stdin(Stdio::null());
        c
    }

    /// Runs and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().expect("run allerta");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs with --json and parses stdout.
    pub fn json(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.run(&all);
        let value = serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("stdout is not one JSON document ({e}):\n{out}\nstderr:\n{err}")
        });
        (code, value, err)
    }

    /// Messages of `outbox/<channel>.jsonl` (empty if the file does not
    /// exist). A line that is not JSON is a message cut short: torn by a
    /// SIGKILL in the middle of its write (its delivery stayed `sending`
    /// and `resume` sends it again), or still being written while the test
    /// reads. It is not a message, and is left out.
    pub fn outbox(&self, channel: &str) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(self.path(&format!("outbox/{channel}.jsonl"))) {
            Ok(text) => text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Runs SQL on the ledger and returns the first column of each row.
    pub fn sql(&self, query: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.path("allerta.db")).expect("open db");
        let mut stmt = conn.prepare(query).expect("prepare");
        stmt.query_map([], |r| {
            let v: rusqlite::types::Value = r.get(0)?;
            Ok(match v {
                rusqlite::types::Value::Null => "NULL".to_owned(),
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Real(f) => f.to_string(),
                rusqlite::types::Value::Text(t) => t,
                rusqlite::types::Value::Blob(_) => "<blob>".to_owned(),
            })
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }
}

/// One HTTP/1.1 request to a test server's control endpoints (`/_test/…`),
/// with an optional JSON body; the JSON it answers.
pub fn control(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to test server");
    let body = body.map(serde_json::Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (_, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    serde_json::from_str(body).expect("JSON body")
}

/// A server process started by a test, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a test server that prints `READY <port>` on stdout when bound.
pub fn start_server(mut command: Command) -> Server {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {command:?}: {e} (run .ci/run to install the test servers)")
        });
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read READY line");
    let port = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("server did not say READY <port>, said {line:?}"));
    Server { child, port }
}

/// The SMTP test server (Debian's python3-aiosmtpd) writing into `maildir`.
pub fn smtp_server(maildir: &Path, extra: &[&str]) -> Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/smtp_server.py");
    let mut c = Command::new("/usr/bin/python3");
    c.arg(script)
        .args(["--host", "127.0.0.1", "--port", "0", "--maildir"])
        .arg(maildir)
        .args(extra);
    start_server(c)
}

/// Messages stored in a Maildir (`new/`), as raw text.
pub fn maildir_messages(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

/// `n` contacts `c1..cn` in zone centro with phone, email and chat id.
pub fn synthetic_rows(n: usize, domain: &str) -> Vec<String> {
    (1..=n)
        .map(|i| {
            format!(
                "c{i},Persona {i},+39 347 {i:07},user{i}@{domain},{},centro,cittadini,it,",
                100_000_000 + i
            )
        })
        .collect()
}
