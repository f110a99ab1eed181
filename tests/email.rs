//! The email channel (SPEC §8.3) against a real SMTP server: Debian's
//! aiosmtpd (tests/servers/smtp_server.py) with STARTTLS, implicit TLS and
//! AUTH, a throwaway CA, and recipients that make it answer 451 or 550.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Project, Server, maildir_messages, smtp_server, synthetic_rows};

const PASSWORD: &str = "correct horse battery staple";
const UNSUBSCRIBE: &str = "https://www.comune.example.it/allerta/cancellami?t={token}";

/// A project plus the SMTP server it talks to.
struct Setup {
    project: Project,
    server: Server,
    maildir: PathBuf,
    log: PathBuf,
}

#[derive(Clone, Copy, PartialEq)]
enum Tls {
    /// Plain SMTP, no STARTTLS offered, no AUTH.
    None,
    /// STARTTLS required by the server and by our URL (?tls=required).
    Starttls,
    /// smtps://: TLS from the first byte.
    Implicit,
}

fn certificates(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/make_cert.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(&certs)
        .stdout(Stdio::null())
        .status()
        .expect("run make_cert.sh");
    assert!(
        status.success(),
        "make_cert.sh failed (is openssl installed?)"
    );
    certs
}

/// Starts the server and writes the project's `[channels.email]`.
/// `extra` is appended to the channel section (rate, connections…).
fn setup(tls: Tls, password_in_config: &str, extra: &str) -> Setup {
    let project = Project::new("");
    let maildir = project.path("Maildir");
    let log = project.path("smtp-events.jsonl");
    let certs = certificates(project.dir.path());
    let mut args: Vec<String> = vec!["--log".into(), log.display().to_string()];
    if tls != Tls::None {
        args.extend([
            "--tls-cert".into(),
            certs.join("cert.pem").display().to_string(),
            "--tls-key".into(),
            certs.join("key.pem").display().to_string(),
            "--auth".into(),
            format!("allerta:{PASSWORD}"),
        ]);
    }
    if tls == Tls::Implicit {
        args.push("--smtps".into());
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = smtp_server(&maildir, &arg_refs);
    let port = server.port;
    let url = match tls {
        Tls::None => format!("smtp://127.0.0.1:{port}"),
        Tls::Starttls => format!("smtp://127.0.0.1:{port}?tls=required"),
        Tls::Implicit => format!("smtps://127.0.0.1:{port}"),
    };
    // Credentials from a file next to the config (like a systemd
    // credential), the test CA from `ca_file`, both relative paths.
    let auth = if tls == Tls::None {
        String::new()
    } else {
        "username = \"allerta\"\npassword_file = \"smtp-password\"\nca_file = \"certs/ca.pem\"\n"
            .to_owned()
    };
    let config = std::fs::read_to_string(project.path("allerta.toml")).expect("config");
    project.write(
        "allerta.toml",
        &format!(
            r#"{config}
[channels.email]
transport = "smtp"
url = "{url}"
from = "Protezione Civile <pc@comune.example.it>"
unsubscribe_url = "{UNSUBSCRIBE}"
timeout = "10s"
{auth}{extra}
"#
        ),
    );
    project.write("smtp-password", &format!("{password_in_config}\n"));
    Setup {
        project,
        server,
        maildir,
        log,
    }
}

/// One stored message: headers (unfolded, names lowercased) and body.
struct Mail {
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn parse(raw: &str) -> Self {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        Self {
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn rcpt(&self) -> String {
        self.header("X-RcptTo").expect("X-RcptTo header").to_owned()
    }
}

fn mails(maildir: &Path) -> Vec<Mail> {
    maildir_messages(maildir)
        .iter()
        .map(|m| Mail::parse(m))
        .collect()
}

/// Decodes a quoted-printable (or 7bit) body part.
fn decode_part(headers_and_body: &str) -> String {
    let part = Mail::parse(headers_and_body);
    match part.header("Content-Transfer-Encoding") {
        Some(e) if e.eq_ignore_ascii_case("quoted-printable") => {
            let soft = part.body.replace("=\n", "");
            let bytes = soft.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'='
                    && i + 2 < bytes.len()
                    && let Ok(b) = u8::from_str_radix(&soft[i + 1..i + 3], 16)
                {
                    out.push(b);
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).expect("UTF-8 body")
        }
        Some(e) if e.eq_ignore_ascii_case("7bit") || e.eq_ignore_ascii_case("8bit") => part.body,
        other => panic!("unexpected transfer encoding {other:?}"),
    }
}

/// Counts messages per envelope recipient.
fn per_recipient(mails: &[Mail]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for m in mails {
        *counts.entry(m.rcpt()).or_default() += 1;
    }
    counts
}

fn events(log: &Path, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("event JSON"))
        .filter(|e| e["event"] == kind)
        .collect()
}

fn email_counts(p: &Project) -> serde_json::Value {
    let (_, doc, _) = p.json(&["status"]);
    doc["channels"]["email"].clone()
}

const WATER: [&str; 6] = [
    "interruzione-acqua",
    "--var",
    "zona=via Roma",
    "--var",
    "quando=oggi dalle 9 alle 17",
    "--all",
];

#[test]
fn starttls_and_auth_deliver_every_recipient_once_with_alert_headers() {
    let s = setup(Tls::Starttls, PASSWORD, "max_connections = 4\n");
    s.project
        .contacts("cittadini.csv", &synthetic_rows(20, "example.org"));

    let mut args = WATER.to_vec();
    args.insert(0, "send");
    args.push("--yes");
    let (code, doc, err) = s.project.json(&args);
    assert_eq!(code, 0, "stderr: {err}");
    let alert = doc["alert"]["id"].as_str().expect("alert id").to_owned();

    let got = mails(&s.maildir);
    let counts = per_recipient(&got);
    let expected: BTreeMap<String, usize> = (1..=20)
        .map(|i| (format!("user{i}@example.org"), 1))
        .collect();
    assert_eq!(counts, expected, "every recipient exactly once");

    for m in &got {
        let to = m.rcpt();
        assert_eq!(m.header("To"), Some(to.as_str()));
        assert_eq!(
            m.header("From"),
            Some("\"Protezione Civile\" <pc@comune.example.it>")
        );
        assert_eq!(m.header("X-MailFrom"), Some("pc@comune.example.it"));
        assert_eq!(
            m.header("Subject"),
            Some("Interruzione acqua oggi dalle 9 alle 17: via Roma")
        );
        assert!(m.header("Date").is_some(), "Date header");
        assert_eq!(m.header("X-Allerta-Alert"), Some(alert.as_str()));
        assert_eq!(m.header("X-Allerta-Status"), Some("Actual"));
        // No HTML in this template: a single text/plain part.
        let ctype = m.header("Content-Type").expect("Content-Type");
        assert!(ctype.starts_with("text/plain"), "{ctype}");
        let whole = maildir_text(m);
        let text = decode_part(&whole);
        assert!(text.contains("INTERRUZIONE DELL'ACQUA"), "{text}");
        assert!(text.contains("Zona: via Roma"), "{text}");
        assert!(
            text.contains("finché non è limpida"),
            "UTF-8 survives: {text}"
        );

        // Message-ID and unsubscribe token come from this delivery's row.
        let row = s.project.sql(&format!(
            "SELECT id || ' ' || token FROM deliveries WHERE alert_id = '{alert}' AND address = '{to}'"
        ));
        let (id, token) = row[0].split_once(' ').expect("id token");
        assert_eq!(
            m.header("Message-ID"),
            Some(format!("<{alert}.{id}@comune.example.it>").as_str())
        );
        assert_eq!(
            m.all("List-Unsubscribe"),
            vec![format!("<{}>", UNSUBSCRIBE.replace("{token}", token)).as_str()]
        );
        assert_eq!(
            m.header("List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click")
        );
    }

    let c = email_counts(&s.project);
    assert_eq!(
        (c["total"].as_u64(), c["sent"].as_u64()),
        (Some(20), Some(20)),
        "{c}"
    );
    assert_eq!(c["failed"], 0);
    // Connections are reused: one login per pooled connection, not per message.
    let logins = events(&s.log, "auth");
    assert!(logins.iter().all(|e| e["success"] == true), "{logins:?}");
    assert!(
        !logins.is_empty() && logins.len() <= 4,
        "{} logins for 20 messages over max_connections = 4",
        logins.len()
    );
    drop(s.server);
}

/// The raw text of a stored message (headers and body), found again by
/// its Message-ID, for part decoding.
fn maildir_text(m: &Mail) -> String {
    let mut text = String::new();
    for (n, v) in &m.headers {
        if n == "content-transfer-encoding" || n == "content-type" {
            text.push_str(&format!("{n}: {v}\n"));
        }
    }
    text.push('\n');
    text.push_str(&m.body);
    text
}

#[test]
fn tempfail_is_retried_and_reject_fails_permanently() {
    let s = setup(Tls::None, "", "max_connections = 2\n");
    let mut rows = synthetic_rows(3, "example.org");
    rows.push("t1,Temp,,tempfail.one@example.org,,centro,cittadini,it,".into());
    rows.push("r1,Rej,,reject.one@example.org,,centro,cittadini,it,".into());
    s.project.contacts("cittadini.csv", &rows);

    let mut args = WATER.to_vec();
    args.insert(0, "send");
    args.push("--yes");
    let (code, doc, err) = s.project.json(&args);
    assert_eq!(code, 3, "a failed delivery means exit 3; stderr: {err}");
    let c = &doc["channels"]["email"];
    assert_eq!(
        (c["sent"].as_u64(), c["failed"].as_u64()),
        (Some(4), Some(1)),
        "{c}"
    );

    let state = |addr: &str| {
        s.project.sql(&format!(
            "SELECT state || '|' || attempts || '|' || coalesce(last_error, '') FROM deliveries WHERE address = '{addr}'"
        ))[0]
            .clone()
    };
    let attempts = |addr: &str| {
        s.project.sql(&format!(
            "SELECT count(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.address = '{addr}'"
        ))[0]
            .clone()
    };
    assert!(
        state("tempfail.one@example.org").starts_with("sent|2|"),
        "{}",
        state("tempfail.one@example.org")
    );
    assert_eq!(
        attempts("tempfail.one@example.org"),
        "2",
        "451, then accepted"
    );
    let rejected = state("reject.one@example.org");
    assert!(rejected.starts_with("failed|1|"), "{rejected}");
    assert!(
        rejected.contains("550"),
        "the SMTP reply is kept: {rejected}"
    );
    assert_eq!(
        attempts("reject.one@example.org"),
        "1",
        "a 5xx is not retried"
    );

    let counts = per_recipient(&mails(&s.maildir));
    assert_eq!(counts.get("tempfail.one@example.org"), Some(&1));
    assert_eq!(counts.get("reject.one@example.org"), None);
    assert_eq!(counts.values().sum::<usize>(), 4);
    // The server saw exactly one 451 and one 550.
    let rcpts = events(&s.log, "rcpt");
    assert_eq!(rcpts.iter().filter(|e| e["reply"] == 451).count(), 1);
    assert_eq!(rcpts.iter().filter(|e| e["reply"] == 550).count(), 1);
}

#[test]
fn wrong_password_stops_the_channel_and_resume_finishes_it() {
    let s = setup(Tls::Starttls, "not the password", "max_connections = 4\n");
    s.project
        .contacts("cittadini.csv", &synthetic_rows(20, "example.org"));

    let mut args = WATER.to_vec();
    args.insert(0, "send");
    args.push("--yes");
    let (code, _, err) = s.project.json(&args);
    assert_eq!(code, 3, "stderr: {err}");
    assert!(
        err.contains("channel email stopped"),
        "names the channel: {err}"
    );
    assert!(err.contains("535"), "names the cause: {err}");
    assert!(
        !err.contains("not the password"),
        "never prints the secret: {err}"
    );

    let c = email_counts(&s.project);
    assert_eq!(
        (
            c["pending"].as_u64(),
            c["failed"].as_u64(),
            c["sent"].as_u64()
        ),
        (Some(20), Some(0), Some(0)),
        "a configuration error must not burn the audience: {c}"
    );
    assert!(mails(&s.maildir).is_empty());
    // The first refusal stops the others: no brute-forcing the account.
    let logins = events(&s.log, "auth");
    assert!(logins.iter().all(|e| e["success"] == false));
    assert!(logins.len() <= 4, "{} failed logins", logins.len());

    s.project.write("smtp-password", &format!("{PASSWORD}\n"));
    let (code, _, err) = s.project.json(&["resume"]);
    assert_eq!(code, 0, "stderr: {err}");
    let counts = per_recipient(&mails(&s.maildir));
    assert_eq!(counts.len(), 20);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let c = email_counts(&s.project);
    assert_eq!(
        (c["sent"].as_u64(), c["pending"].as_u64()),
        (Some(20), Some(0)),
        "{c}"
    );
}

#[test]
fn kill_mid_send_then_resume_delivers_everyone_with_bounded_duplicates() {
    const N: usize = 3000;
    const MAX_CONNECTIONS: usize = 4;
    const RATE: usize = 300;
    let s = setup(
        Tls::None,
        "",
        &format!("max_connections = {MAX_CONNECTIONS}\nrate_per_second = {RATE}\n"),
    );
    s.project
        .contacts("cittadini.csv", &synthetic_rows(N, "example.org"));

    let mut args = vec!["--json", "send"];
    args.extend_from_slice(&WATER);
    args.push("--yes");
    let mut child = s
        .project
        .cmd()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start send");
    // Kill once a good part went out (~3 s at 300/s), whatever the speed
    // of the machine.
    let deadline = Instant::now() + Duration::from_secs(120);
    let received = |dir: &Path| {
        std::fs::read_dir(dir.join("new"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    while received(&s.maildir) < 900 {
        assert!(
            Instant::now() < deadline,
            "send too slow to reach 900 messages"
        );
        assert!(
            child.try_wait().expect("poll").is_none(),
            "send ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // Let the server store what was in flight at the kill.
    std::thread::sleep(Duration::from_millis(300));
    let before_resume = received(&s.maildir);
    assert!(before_resume < N, "the kill came too late to test anything");
    let unsettled: usize = s
        .project
        .sql("SELECT count(*) FROM deliveries WHERE state IN ('pending', 'sending')")[0]
        .parse()
        .expect("count");
    assert!(unsettled > 0);
    let sending_at_kill: usize = s
        .project
        .sql("SELECT count(*) FROM deliveries WHERE state = 'sending'")[0]
        .parse()
        .expect("count");

    let (code, _, err) = s.project.json(&["resume"]);
    assert_eq!(code, 0, "stderr: {err}");

    let counts = per_recipient(&mails(&s.maildir));
    assert_eq!(counts.len(), N, "every recipient received the alert");
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    // Only rows left in `sending` are re-sent by resume, so duplicates can
    // come only from them.
    assert!(
        duplicates <= sending_at_kill,
        "{duplicates} duplicates but only {sending_at_kill} deliveries were in `sending`"
    );
    // SPEC §7 bound: the sends in flight (≤ max_connections) plus outcomes
    // not yet committed, which the writer commits at least every 100 ms:
    // at most RATE / 10 messages at this rate. (The engine also flushes
    // before each claim, so in practice it is ≤ max_connections.)
    let bound = MAX_CONNECTIONS + RATE / 10;
    assert!(
        sending_at_kill <= bound,
        "{sending_at_kill} deliveries in `sending` at the kill, more than {bound}"
    );
    eprintln!(
        "kill: {before_resume} received before resume, {sending_at_kill} in sending, {duplicates} duplicates"
    );
    let c = email_counts(&s.project);
    assert_eq!(
        (c["sent"].as_u64(), c["total"].as_u64()),
        (Some(N as u64), Some(N as u64)),
        "{c}"
    );
}

#[test]
fn html_template_goes_out_as_multipart_alternative_and_drills_are_marked() {
    let s = setup(Tls::Implicit, PASSWORD, "max_connections = 2\n");
    s.project.contacts(
        "staff.csv",
        &["s1,Staff,,staff@example.org,,centro,esercitazione,it,".to_owned()],
    );
    let (code, doc, err) = s.project.json(&[
        "send",
        "allerta-meteo",
        "--var",
        "livello=rosso",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ora",
        "--drill",
    ]);
    assert_eq!(code, 0, "smtps:// with a private CA; stderr: {err}");
    assert_eq!(doc["alert"]["status"], "Exercise");

    let got = mails(&s.maildir);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    let subject = m.header("Subject").expect("Subject");
    assert!(subject.starts_with("[ESERCITAZIONE]"), "{subject}");
    assert_eq!(m.header("X-Allerta-Status"), Some("Exercise"));
    let ctype = m.header("Content-Type").expect("Content-Type");
    assert!(ctype.starts_with("multipart/alternative"), "{ctype}");
    let boundary = ctype
        .split("boundary=")
        .nth(1)
        .expect("boundary")
        .trim_matches('"');
    let parts: Vec<&str> = m
        .body
        .split(&format!("--{boundary}"))
        .map(str::trim_start)
        .filter(|p| !p.is_empty() && !p.starts_with("--"))
        .collect();
    assert_eq!(parts.len(), 2, "text and HTML: {parts:?}");
    let types: Vec<String> = parts
        .iter()
        .map(|p| {
            Mail::parse(p)
                .header("Content-Type")
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(types[0].starts_with("text/plain"), "{types:?}");
    assert!(types[1].starts_with("text/html"), "{types:?}");
    let text = decode_part(parts[0]);
    let html = decode_part(parts[1]);
    assert!(text.contains("ALLERTA METEO CODICE ROSSO"), "{text}");
    assert!(html.contains("<h1>"), "{html}");
    assert!(html.contains("rischio idraulico"), "{html}");
}

#[test]
fn untrusted_certificate_stops_the_channel_without_failing_deliveries() {
    let s = setup(Tls::Starttls, PASSWORD, "max_connections = 2\n");
    // Same setup, but trust only the public roots: the test CA is unknown.
    let config = std::fs::read_to_string(s.project.path("allerta.toml")).expect("config");
    let without_ca: String = config
        .lines()
        .filter(|l| !l.starts_with("ca_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    s.project.write("allerta.toml", &without_ca);
    s.project
        .contacts("cittadini.csv", &synthetic_rows(5, "example.org"));

    let mut args = WATER.to_vec();
    args.insert(0, "send");
    args.push("--yes");
    let (code, _, err) = s.project.json(&args);
    assert_eq!(code, 3, "stderr: {err}");
    assert!(err.contains("channel email stopped"), "{err}");
    assert!(err.contains("TLS"), "{err}");
    let c = email_counts(&s.project);
    assert_eq!(
        (c["pending"].as_u64(), c["failed"].as_u64()),
        (Some(5), Some(0)),
        "{c}"
    );
    assert!(mails(&s.maildir).is_empty());
}

#[test]
fn tls_required_refuses_a_server_without_starttls() {
    let s = setup(Tls::None, "", "");
    let config = std::fs::read_to_string(s.project.path("allerta.toml")).expect("config");
    let port = s.server.port;
    s.project.write(
        "allerta.toml",
        &config.replace(
            &format!("smtp://127.0.0.1:{port}\""),
            &format!("smtp://127.0.0.1:{port}?tls=required\""),
        ),
    );
    s.project
        .contacts("cittadini.csv", &synthetic_rows(3, "example.org"));
    let mut args = WATER.to_vec();
    args.insert(0, "send");
    args.push("--yes");
    let (code, _, err) = s.project.json(&args);
    assert_eq!(code, 3, "stderr: {err}");
    assert!(err.contains("STARTTLS"), "{err}");
    assert!(mails(&s.maildir).is_empty(), "nothing sent in clear");
    assert_eq!(email_counts(&s.project)["pending"], 3);
}

#[test]
fn a_server_refusing_everyone_stops_the_channel_instead_of_failing_the_audience() {
    let s = setup(Tls::None, "", "max_connections = 1\n");
    // 25 addresses the server refuses (550 5.1.1), then 5 good ones: with
    // one connection they are tried in this order.
    let mut rows: Vec<String> = (1..=25)
        .map(|i| format!("r{i},Rej {i},,reject{i}@example.org,,centro,cittadini,it,"))
        .collect();
    rows.extend(synthetic_rows(5, "example.org"));
    s.project.contacts("cittadini.csv", &rows);

    let mut args = WATER.to_vec();
    args.insert(0, "send");
    args.push("--yes");
    let (code, _, err) = s.project.json(&args);
    assert_eq!(code, 3, "stderr: {err}");
    assert!(err.contains("channel email stopped"), "{err}");
    assert!(err.contains("20 recipients in a row"), "{err}");
    let c = email_counts(&s.project);
    // The 20th refusal stops the channel: 19 failed, the rest kept pending.
    assert_eq!(
        (
            c["failed"].as_u64(),
            c["pending"].as_u64(),
            c["sent"].as_u64()
        ),
        (Some(19), Some(11), Some(0)),
        "{c}"
    );
    assert!(mails(&s.maildir).is_empty());
}
