//! `allerta watch` and drafts (SPEC §16), end to end with the real binary:
//! trimmed copies of the real DPC bulletin and MeteoAlarm feed
//! (tests/fixtures/watch, see its README for sources and licences) served by
//! a local HTTP server and read through `file://`; officers notified on the
//! outbox transports; `send --draft` through the alert layer.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Project, Server, start_server};

const NONE: &str = "Assenza di fenomeni significativi prevedibili / NESSUNA ALLERTA";
const GIALLA: &str = "Ordinaria / ALLERTA GIALLA";
const ARANCIONE: &str = "Moderata / ALLERTA ARANCIONE";
const DPC_FILE: &str = "20261202_1430_today.json";

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/watch")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bulletin with Montelupo's zone at this "Per rischio idraulico" value.
fn bulletin(idraulico: &str) -> String {
    fixture(DPC_FILE).replace("IDRAULICO_MONTELUPO", idraulico)
}

fn feed(event: &str, severity: &str) -> String {
    fixture("meteoalarm-italy.xml")
        .replace("THUNDERSTORM_EVENT", event)
        .replace("THUNDERSTORM_SEVERITY", severity)
}

/// The bulletin server, serving `dir` at /files/.
fn bulletin_server(dir: &Path) -> Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/bulletin_server.py");
    let mut c = Command::new("/usr/bin/python3");
    c.arg(script).arg("--dir").arg(dir).args(["--slow", "20"]);
    start_server(c)
}

const CHANNELS: &str = r#"
[channels.telegram]
transport = "outbox"
[channels.sms]
transport = "outbox"
[channels.email]
transport = "outbox"
from = "Protezione Civile <pc@comune.example.it>"
"#;

const RULES: &str = r#"
[[watch.rule]]
level = "giallo"
risk = "idraulico"
template = "allerta-meteo"
vars = { livello = "{{ level }}", rischio = "{{ risk }}", dalle = "ore 0 di {{ day }}", alle = "ore 24 di {{ day }}" }
audience = ["all"]

[[watch.rule]]
level = "giallo"
risk = "thunderstorm"
template = "allerta-meteo"
vars = { livello = "{{ level }}", rischio = "temporali", dalle = "ore 0 di {{ day }}" }
audience = ["zone:centro"]
"#;

/// A project watching `sources` (TOML of [[watch.source]] tables), with
/// officers on chat -100200300 and uff@comune.example.it, and two citizens.
fn project(sources: &str, extra_watch: &str) -> Project {
    let p = Project::new(&format!(
        "{CHANNELS}\n[watch]\nnotify_chats = [-100200300]\nnotify_emails = [\"uff@comune.example.it\"]\n{extra_watch}\n{sources}\n{RULES}"
    ));
    p.contacts(
        "cittadini.csv",
        &[
            "c1,Anna Rossi,+39 347 1234567,anna@example.it,,centro,cittadini,it,".into(),
            "c2,Marco Bianchi,+39 348 7654321,,,fibbiana,cittadini,it,".into(),
        ],
    );
    p
}

fn dpc_source(name: &str, url: &str) -> String {
    format!(
        "[[watch.source]]\nname = \"{name}\"\nkind = \"dpc\"\nurl = \"{url}\"\ncomune = \"MONTELUPO FIORENTINO\"\ntimeout = \"2s\"\n"
    )
}

fn drafts(p: &Project) -> Vec<serde_json::Value> {
    let (code, doc, err) = p.json(&["drafts", "list"]);
    assert_eq!(code, 0, "{err}");
    doc["drafts"].as_array().expect("drafts array").clone()
}

/// A served copy of the bulletin that a test can change between polls.
struct Served {
    dir: tempfile::TempDir,
    server: Server,
}

impl Served {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = bulletin_server(dir.path());
        Self { dir, server }
    }

    fn put(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).expect("write served file");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.server.port)
    }
}

#[test]
fn a_dpc_alert_over_http_makes_one_draft_and_notifies_the_officers_only() {
    let served = Served::new();
    served.put(DPC_FILE, &bulletin(GIALLA));
    let p = project(
        &dpc_source("dpc", &served.url(&format!("/files/{DPC_FILE}"))),
        "",
    );

    let (code, out, err) = p.run(&["watch", "--once"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let list = drafts(&p);
    assert_eq!(list.len(), 1, "{list:?}");
    let d = &list[0];
    assert_eq!(d["id"], 1);
    assert_eq!(d["source"], "dpc");
    assert_eq!(d["state"], "pending");
    assert_eq!(d["template"], "allerta-meteo");
    assert_eq!(d["audience"], serde_json::json!(["all"]));
    assert_eq!(d["variables"]["livello"], "giallo");
    assert_eq!(d["variables"]["rischio"], "idraulico");
    // The day comes from the bulletin's file name, said as citizens say it.
    assert_eq!(d["variables"]["dalle"], "ore 0 di mercoledì 2 dicembre");
    assert!(
        d["created_at"].as_str().is_some_and(|s| s.contains('T')),
        "{d}"
    );

    // The officers got the text and the exact command, on the configured
    // transports (the outbox here).
    let chats: Vec<_> = p
        .outbox("telegram")
        .into_iter()
        .filter(|l| l["to"] == "-100200300")
        .collect();
    assert_eq!(chats.len(), 1, "{:?}", p.outbox("telegram"));
    let text = chats[0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("allerta send --draft 1"), "{text}");
    assert!(text.contains("ALLERTA GIALLA rischio idraulico"), "{text}");
    assert!(
        text.contains("MONTELUPO FIORENTINO (zone Valdarno Inferiore)"),
        "{text}"
    );
    let mails = p.outbox("email");
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["to"], "uff@comune.example.it");
    assert!(
        mails[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("allerta send --draft 1"),
        "{:?}",
        mails[0]
    );
    assert!(
        mails[0]["subject"]
            .as_str()
            .unwrap_or_default()
            .contains("draft 1")
    );

    // watch never sends to citizens: no alert, no delivery, no SMS.
    assert_eq!(p.sql("SELECT COUNT(*) FROM alerts"), vec!["0"]);
    assert_eq!(p.sql("SELECT COUNT(*) FROM deliveries"), vec!["0"]);
    assert!(p.outbox("sms").is_empty());

    // The same bulletin read again makes no second draft and no second note.
    let (code, out, err) = p.run(&["watch", "--once"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no new draft"), "{out}");
    assert_eq!(drafts(&p).len(), 1);
    assert_eq!(p.outbox("email").len(), 1);
}

#[test]
fn raised_level_makes_a_new_draft_and_the_end_of_a_sent_alert_a_cessata_allerta() {
    let served = Served::new();
    served.put(DPC_FILE, &bulletin(GIALLA));
    let p = project(
        &dpc_source("dpc", &served.url(&format!("/files/{DPC_FILE}"))),
        "",
    );
    assert_eq!(p.run(&["watch", "--once"]).0, 0);

    // The officer sends draft 1: it goes through the alert layer.
    let (code, status, err) = p.json(&["send", "--draft", "1", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let alert_id = status["alert"]["id"].as_str().expect("alert id").to_owned();
    assert_eq!(status["alert"]["template"], "allerta-meteo");
    assert_eq!(status["channels"]["sms"]["total"], 2);
    let sms = p.outbox("sms");
    assert_eq!(sms.len(), 2);
    assert!(
        sms[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("ALLERTA GIALLA rischio idraulico"),
        "{sms:?}"
    );
    let list = drafts(&p);
    assert_eq!(list[0]["state"], "sent");
    assert_eq!(list[0]["alert_id"], alert_id.as_str());
    // Sent once: the same draft cannot go out twice.
    let (code, _, err) = p.run(&["send", "--draft", "1", "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already sent"), "{err}");
    assert_eq!(p.outbox("sms").len(), 2);
    // A crash after the send, before the draft was marked: the draft's key
    // resumes the same alert instead of sending a second one.
    let conn = rusqlite::Connection::open(p.path("allerta.db")).expect("db");
    conn.execute(
        "UPDATE drafts SET state = 'pending', alert_id = NULL WHERE id = 1",
        [],
    )
    .expect("update");
    drop(conn);
    let (code, _, err) = p.run(&["send", "--draft", "1", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(p.sql("SELECT COUNT(*) FROM alerts"), vec!["1"]);
    assert_eq!(p.outbox("sms").len(), 2);
    assert_eq!(drafts(&p)[0]["alert_id"], alert_id.as_str());

    // Orange: a new draft at the raised level.
    served.put(DPC_FILE, &bulletin(ARANCIONE));
    assert_eq!(p.run(&["watch", "--once"]).0, 0);
    let list = drafts(&p);
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["id"], 2);
    assert_eq!(list[0]["variables"]["livello"], "arancione");
    assert_eq!(list[0]["state"], "pending");

    // Back to yellow: lower, no draft.
    served.put(DPC_FILE, &bulletin(GIALLA));
    assert_eq!(p.run(&["watch", "--once"]).0, 0);
    assert_eq!(drafts(&p).len(), 2);

    // Back to none: a cessata-allerta draft for the alert that came from a draft.
    served.put(DPC_FILE, &bulletin(NONE));
    assert_eq!(p.run(&["watch", "--once"]).0, 0);
    let list = drafts(&p);
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(list[0]["template"], "cessata-allerta");
    assert_eq!(list[0]["cancels"], alert_id.as_str());
    let note = p
        .outbox("telegram")
        .into_iter()
        .rev()
        .find(|l| l["to"] == "-100200300")
        .expect("a note for the cessata draft");
    assert!(
        note["text"]
            .as_str()
            .unwrap_or_default()
            .contains("allerta send --draft 3")
    );
    // Read again: still one cessata draft.
    assert_eq!(p.run(&["watch", "--once"]).0, 0);
    assert_eq!(drafts(&p).len(), 3);

    // Sending it cancels the alert (CAP Cancel, the revocation to those reached).
    let (code, _, err) = p.run(&["send", "--draft", "3", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let (_, status, _) = p.json(&["status", &alert_id]);
    assert_eq!(status["alert"]["state"], "cancelled", "{status}");
    assert_eq!(drafts(&p)[0]["state"], "sent");
    assert!(
        p.outbox("sms").iter().any(|l| l["text"]
            .as_str()
            .unwrap_or_default()
            .contains("CESSATA ALLERTA")),
        "{:?}",
        p.outbox("sms")
    );
}

#[test]
fn send_draft_without_a_terminal_and_without_yes_is_refused_and_discard_keeps_it_unsent() {
    let served = Served::new();
    served.put(DPC_FILE, &bulletin(ARANCIONE));
    let p = project(
        &dpc_source("dpc", &served.url(&format!("/files/{DPC_FILE}"))),
        "",
    );
    assert_eq!(p.run(&["watch", "--once"]).0, 0);

    let (code, _, err) = p.run(&["send", "--draft", "1"]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(p.sql("SELECT COUNT(*) FROM alerts"), vec!["0"]);
    assert!(p.outbox("sms").is_empty());
    assert_eq!(drafts(&p)[0]["state"], "pending");

    // A technical test of the draft goes out marked and leaves it pending.
    let (code, _, err) = p.run(&["send", "--draft", "1", "--test", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let sms = p.outbox("sms");
    assert_eq!(sms.len(), 2, "{sms:?}");
    assert!(sms.iter().all(|l| l["status"] == "Test"), "{sms:?}");
    assert!(
        sms.iter()
            .all(|l| l["text"].as_str().unwrap_or_default().starts_with("[TEST]")),
        "{sms:?}"
    );
    assert_eq!(drafts(&p)[0]["state"], "pending");

    let (code, out, err) = p.run(&["drafts", "show", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("allerta send --draft 1"), "{out}");
    assert!(out.contains("ALLERTA ARANCIONE"), "{out}");

    let (code, _, err) = p.run(&["drafts", "discard", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(drafts(&p)[0]["state"], "discarded");
    let (code, _, err) = p.run(&["send", "--draft", "1", "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("discarded"), "{err}");
    let (code, _, err) = p.run(&["send", "--draft", "99", "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown draft"), "{err}");
    // Only the test alert exists.
    assert_eq!(p.sql("SELECT status FROM alerts"), vec!["Test"]);
    assert!(
        p.sql("SELECT command FROM audit")
            .contains(&"drafts discard".to_owned()),
        "{:?}",
        p.sql("SELECT command FROM audit")
    );
}

#[test]
fn a_file_url_bulletin_and_a_cap_feed_are_both_read() {
    let served = Served::new();
    served.put(
        "meteoalarm.xml",
        &feed("Orange Thunderstorm Warning", "Severe"),
    );
    let sources = format!(
        "{}\n[[watch.source]]\nname = \"meteoalarm\"\nkind = \"cap\"\nurl = \"{}\"\narea = \"toscana\"\n",
        dpc_source("dpc-file", &format!("file://bollettini/{DPC_FILE}")),
        served.url("/files/meteoalarm.xml")
    );
    let p = project(&sources, "");
    p.write(&format!("bollettini/{DPC_FILE}"), &bulletin(GIALLA));

    let (code, doc, err) = p.json(&["watch", "--once"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["sources"][0]["name"], "dpc-file");
    assert_eq!(doc["sources"][0]["ok"], true);
    assert_eq!(
        doc["sources"][0]["days"][0]["found_in"][0],
        "Valdarno Inferiore"
    );
    assert_eq!(doc["sources"][1]["ok"], true, "{doc}");
    let list = drafts(&p);
    assert_eq!(list.len(), 2, "{list:?}");
    let cap = list
        .iter()
        .find(|d| d["source"] == "meteoalarm")
        .expect("a CAP draft");
    // Severe is arancione; the Test entry (Extreme) and Sicily's are not read.
    assert_eq!(cap["variables"]["livello"], "arancione");
    assert_eq!(cap["variables"]["rischio"], "temporali");
    assert_eq!(cap["audience"], serde_json::json!(["zone:centro"]));

    // The colour word in the event changes with the level; the draft follows
    // the severity: yellow is lower (no draft), red is raised (a draft).
    served.put(
        "meteoalarm.xml",
        &feed("Yellow Thunderstorm Warning", "Moderate"),
    );
    assert_eq!(p.run(&["watch", "--once"]).0, 0);
    assert_eq!(drafts(&p).len(), 2);
    served.put(
        "meteoalarm.xml",
        &feed("Red Thunderstorm Warning", "Extreme"),
    );
    assert_eq!(p.run(&["watch", "--once"]).0, 0);
    let list = drafts(&p);
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["variables"]["livello"], "rosso");
}

#[test]
fn failing_slow_and_garbage_sources_are_reported_by_name_and_never_stop_the_others() {
    let served = Served::new();
    served.put(DPC_FILE, &bulletin(GIALLA));
    let sources = [
        dpc_source("rotto", &served.url("/error/500")),
        dpc_source("lento", &served.url("/slow")),
        dpc_source("spazzatura", &served.url("/garbage")),
        dpc_source("assente", "file:///nonexistent/bollettino.json"),
        dpc_source("buono", &served.url(&format!("/files/{DPC_FILE}"))),
    ]
    .join("\n");
    let p = project(&sources, "");
    let (code, out, err) = p.run(&["watch", "--once"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    for name in ["rotto", "lento", "spazzatura", "assente"] {
        assert!(
            err.contains(&format!("source {name}:")),
            "{name} not reported:\n{err}"
        );
    }
    assert!(err.contains("HTTP 500"), "{err}");
    assert!(err.contains("no answer within"), "{err}");
    assert!(!err.contains("source buono:"), "{err}");
    let list = drafts(&p);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["source"], "buono");
    // A 500 is transient: it was tried again (bounded).
    let hits = reqwest_free_get(&served.url("/_test/hits"));
    assert_eq!(hits["/error/500"], 3, "{hits}");
}

#[test]
fn the_daemon_polls_every_interval_and_stops_on_sigterm() {
    let served = Served::new();
    served.put(DPC_FILE, &bulletin(GIALLA));
    let p = project(
        &dpc_source("dpc", &served.url(&format!("/files/{DPC_FILE}"))),
        "interval = \"1s\"",
    );
    let mut child = p
        .cmd()
        .arg("watch")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watch");
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            // The table exists once the daemon's first open has migrated
            // the new file: until then, not yet.
            if p.path("allerta.db").exists()
                && rusqlite::Connection::open(p.path("allerta.db"))
                    .and_then(|c| {
                        c.query_row("SELECT COUNT(*) FROM drafts", [], |r| r.get::<_, i64>(0))
                    })
                    .is_ok_and(|count| count == n as i64)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    };
    assert!(wait_for(1), "the daemon made no draft");
    served.put(DPC_FILE, &bulletin(ARANCIONE));
    assert!(wait_for(2), "the daemon did not poll again");

    // SAFETY: kill(2) on the pid of a child this test started.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "watch did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "{status:?}\n{err}");
    assert!(err.contains("watch stopped"), "{err}");
    assert_eq!(drafts(&p).len(), 2);
}

#[test]
fn watch_configuration_errors_are_exit_2_and_name_the_key() {
    let url = format!("file:///tmp/{DPC_FILE}");
    let cases: [(&str, &str); 5] = [
        ("intervall = \"1m\"", "intervall"),
        ("interval = \"soon\"", "watch.interval"),
        ("", "watch.source[1].url"),
        ("", "watch.rule[2].audience"),
        ("", "watch.source[0].comune"),
    ];
    for (i, (extra, key)) in cases.iter().enumerate() {
        let sources = match i {
            2 => format!(
                "{}\n{}",
                dpc_source("a", &url),
                dpc_source("b", "ftp://example.org/x.json")
            ),
            4 => "[[watch.source]]\nname = \"c\"\nkind = \"dpc\"\nurl = \"file:///x.json\"\narea = \"Toscana\"\n".to_owned(),
            _ => dpc_source("a", &url),
        };
        let p = project(&sources, extra);
        if i == 3 {
            let cfg = p.path("allerta.toml");
            let mut text = std::fs::read_to_string(&cfg).expect("config");
            text.push_str("\n[[watch.rule]]\nlevel = \"rosso\"\nrisk = \"idraulico\"\ntemplate = \"evacuazione\"\naudience = [\"zone:altrove\"]\n");
            std::fs::write(cfg, text).expect("config");
        }
        let (code, _, err) = p.run(&["drafts", "list"]);
        assert_eq!(code, 2, "case {i}: {err}");
        assert!(err.contains(key), "case {i}: expected `{key}` in: {err}");
    }

    // A rule whose template cannot render with its variables stops `watch`
    // at start, before any source is read.
    let p = project(&dpc_source("a", &url), "");
    let cfg = p.path("allerta.toml");
    let text = std::fs::read_to_string(&cfg)
        .expect("config")
        .replace("rischio = \"{{ risk }}\"", "rischio = \"grandine\"");
    std::fs::write(cfg, text).expect("config");
    let (code, _, err) = p.run(&["watch", "--once"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("watch.rule[0]"), "{err}");
    assert!(drafts(&p).is_empty());
}

/// GET without a client library: the test server's JSON counters.
fn reqwest_free_get(url: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').expect("url with a path");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("write");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read");
    let json = body.split("\r\n\r\n").nth(1).unwrap_or("{}");
    serde_json::from_str(json).expect("JSON body")
}

#[test]
fn sigterm_while_a_slow_source_is_read_stops_the_daemon_at_once() {
    let served = Served::new();
    // The server answers /slow after 20 s; the source would wait 30 s.
    let source =
        dpc_source("lento", &served.url("/slow")).replace("timeout = \"2s\"", "timeout = \"30s\"");
    let p = project(&source, "interval = \"1s\"");
    let mut child = p
        .cmd()
        .arg("watch")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start watch");
    // Wait until the request is in flight.
    let deadline = Instant::now() + Duration::from_secs(15);
    while reqwest_free_get(&served.url("/_test/hits"))["/slow"] != 1 {
        assert!(Instant::now() < deadline, "watch never asked the source");
        std::thread::sleep(Duration::from_millis(100));
    }
    let asked = Instant::now();
    // SAFETY: kill(2) on the pid of a child this test started.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "watch waited for the slow source instead of stopping"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
}

/// One GET to the Telegram test server's control endpoint.
fn telegram_calls(port: u16) -> Vec<serde_json::Value> {
    reqwest_free_get(&format!("http://127.0.0.1:{port}/_test/sent"))["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn officers_are_notified_through_the_real_bot_api_and_smtp_transports() {
    const TOKEN: &str = "123456:TEST-token";
    let served = Served::new();
    served.put(DPC_FILE, &bulletin(ARANCIONE));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/telegram_server.py");
    let mut c = Command::new("/usr/bin/python3");
    c.arg(script).args(["--port", "0", "--token", TOKEN]);
    let telegram = start_server(c);
    let scratch = tempfile::tempdir().expect("maildir");
    let maildir = scratch.path().join("Maildir");
    let smtp = common::smtp_server(&maildir, &[]);
    let p = Project::new(&format!(
        r#"
[channels.telegram]
transport = "bot-api"
api_url = "http://127.0.0.1:{tg}"
token_file = "telegram.token"
[channels.sms]
transport = "outbox"
[channels.email]
transport = "smtp"
url = "smtp://127.0.0.1:{smtp}"
from = "Protezione Civile <pc@comune.example.it>"

[watch]
notify_chats = [-100200300]
notify_emails = ["uff@comune.example.it"]
{source}
{RULES}"#,
        tg = telegram.port,
        smtp = smtp.port,
        source = dpc_source("dpc", &served.url(&format!("/files/{DPC_FILE}"))),
    ));
    p.write("telegram.token", &format!("{TOKEN}\n"));

    let (code, out, err) = p.run(&["watch", "--once"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let calls: Vec<_> = telegram_calls(telegram.port)
        .into_iter()
        .filter(|c| {
            c["method"]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case("sendMessage"))
        })
        .collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let params = &calls[0]["params"];
    assert_eq!(
        params["chat_id"].to_string().trim_matches('"'),
        "-100200300",
        "{params}"
    );
    assert_eq!(calls[0]["status"], 200, "{:?}", calls[0]);
    let text = params["text"].as_str().unwrap_or_default();
    assert!(text.contains("allerta send --draft 1"), "{text}");
    assert!(text.contains("ALLERTA ARANCIONE"), "{text}");
    // Not a delivery to a citizen: no acknowledgement button.
    assert!(params.get("reply_markup").is_none(), "{params}");

    let mails = common::maildir_messages(&maildir);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("uff@comune.example.it"), "{}", mails[0]);
    assert!(mails[0].contains("allerta send --draft 1"), "{}", mails[0]);
    assert!(!mails[0].contains("List-Unsubscribe"), "{}", mails[0]);
    assert_eq!(p.sql("SELECT COUNT(*) FROM deliveries"), vec!["0"]);
}

#[test]
fn an_officer_notification_that_fails_keeps_the_draft_and_makes_watch_once_exit_1() {
    let served = Served::new();
    served.put(DPC_FILE, &bulletin(GIALLA));
    // Nothing listens there: every attempt is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let p = Project::new(&format!(
        r#"
[channels.telegram]
transport = "bot-api"
api_url = "http://127.0.0.1:{closed}"
token = "123456:TEST-token"
[channels.sms]
transport = "outbox"

[watch]
notify_chats = [-100200300]
{source}
{RULES}"#,
        source = dpc_source("dpc", &served.url(&format!("/files/{DPC_FILE}"))),
    ));
    let (code, _, err) = p.run(&["watch", "--once"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("notification to telegram chat -100200300"),
        "{err}"
    );
    assert!(!err.contains("TEST-token"), "the token leaked: {err}");
    let list = drafts(&p);
    assert_eq!(list.len(), 1, "the draft is kept: {list:?}");
    assert_eq!(list[0]["state"], "pending");
}
