//! The officer console inside `allerta serve` (SPEC §17), driven for real:
//! the real binary, a Twilio-compatible SMS gateway that answers slowly
//! enough for counts to move, headless Chromium through Debian's
//! chromium-driver and python3-selenium (tests/servers/console_browser.py),
//! and plain HTTP with reqwest for what a browser hides (cookie flags,
//! CSRF, the login limit). Screenshots and the PDF go to
//! `target/test-artifacts/`.

mod common;
#[path = "servers/sms_support.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Project, Server, start_server};
use support::{Serve, TOKEN, json_env, phones, wait_for_counts};

const SID: &str = "AC00000000000000000000000000000000";
const ENV: [(&str, &str); 2] = [
    ("TWILIO_AUTH_TOKEN", "twilio-secret"),
    ("ALLERTA_DLR_TOKEN", TOKEN),
];
const CENTRO_POLYGON: &str = "43.73,11.01 43.74,11.03 43.72,11.04 43.73,11.01";
const FIBBIANA_POLYGON: &str = "43.70,11.00 43.715,11.02 43.70,11.03 43.69,11.01 43.70,11.00";

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// `allerta console passwd NAME` with the password on stdin: (code, stdout, stderr).
fn passwd(p: &Project, name: &str, password: &str) -> (i32, String, String) {
    let mut child = p
        .cmd()
        .args(["console", "passwd", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run allerta console passwd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `[console.users]` line for `name`.
fn user_line(p: &Project, name: &str, password: &str) -> String {
    let (code, out, err) = passwd(p, name, password);
    assert_eq!(code, 0, "{err}");
    out.trim().to_owned()
}

fn gateway(log: &Path) -> Server {
    let mut c = Command::new("/usr/bin/python3");
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/servers/sms_gateway.py"
    ))
    .args([
        "--mode",
        "twilio",
        "--port",
        "0",
        "--user",
        SID,
        "--password",
        "twilio-secret",
        "--log",
    ])
    .arg(log);
    start_server(c)
}

/// A project whose SMS goes through the Twilio-compatible gateway at
/// `rate` messages a second, with the console configured (`console`: the
/// lines after `[console]`) and a polygon for each zone.
fn project(gw: &Server, rate: u32, console: &str) -> Project {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sms-twilio.toml"),
    )
    .expect("example config");
    let sms = example
        .replace(
            "https://api.twilio.com",
            &format!("http://127.0.0.1:{}", gw.port),
        )
        .replace("https://allerta.comune.example.it", "__SERVE__")
        .replace("127.0.0.1:8787", "127.0.0.1:0")
        .replace("rate_per_second = 10", &format!("rate_per_second = {rate}"));
    let p = support::project(&sms);
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    let config = config
        .replace(
            "name = \"Montelupo centro\"",
            &format!("name = \"Montelupo centro\"\npolygon = \"{CENTRO_POLYGON}\""),
        )
        .replace(
            "name = \"Fibbiana\"",
            &format!("name = \"Fibbiana\"\npolygon = \"{FIBBIANA_POLYGON}\""),
        );
    p.write("allerta.toml", &format!("{config}\n[console]\n{console}\n"));
    p
}

/// An HTTP client that follows no redirect, optionally from another
/// loopback address (the login limit is per address).
fn client(from: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(ip) = from {
        b = b.local_address(ip.parse::<IpAddr>().expect("ip"));
    }
    b.build().expect("client")
}

/// `/console/alerts/ALERT/not-reached.csv` as root sees it.
fn not_reached_csv(base: &str, alert: &str) -> String {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = client(None);
        let (_, session) = login(&c, base, "root", "segreto-root").await;
        c.get(format!("{base}/console/alerts/{alert}/not-reached.csv"))
            .header("cookie", session.unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

/// The session cookie (`name=value`) a response sets, and the whole header.
fn set_cookie(r: &reqwest::Response) -> Option<(String, String)> {
    let header = r.headers().get("set-cookie")?.to_str().ok()?.to_owned();
    let pair = header.split(';').next()?.trim().to_owned();
    Some((pair, header))
}

/// An anonymous session and the login form's CSRF token.
async fn login_form(c: &reqwest::Client, base: &str) -> (String, String) {
    let r = c
        .get(format!("{base}/console/login"))
        .send()
        .await
        .expect("GET login");
    assert_eq!(r.status(), 200);
    let (cookie, _) = set_cookie(&r).expect("login form sets a session cookie");
    let body = r.text().await.expect("body");
    (cookie, csrf_of(&body))
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    html[start..start + 64].to_owned()
}

/// POST /console/login; the status and the new session cookie if any.
async fn login(
    c: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> (u16, Option<String>) {
    let (cookie, csrf) = login_form(c, base).await;
    let r = c
        .post(format!("{base}/console/login"))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("user", user),
            ("password", password),
        ])
        .send()
        .await
        .expect("POST login");
    (r.status().as_u16(), set_cookie(&r).map(|(c, _)| c))
}

fn browser(scenario: &str, args: &serde_json::Value) -> std::process::Child {
    let file = tempfile::NamedTempFile::new().expect("args file");
    std::fs::write(file.path(), args.to_string()).expect("write args");
    let (_, path) = file.keep().expect("keep args file");
    Command::new("/usr/bin/python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/servers/console_browser.py"
        ))
        .arg(scenario)
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the browser script (needs chromium-driver and python3-selenium)")
}

fn browser_result(child: std::process::Child) -> serde_json::Value {
    let out = child.wait_with_output().expect("browser script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "browser script failed:\n{stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn latest_alert(p: &Project) -> Option<String> {
    p.sql("SELECT id FROM alerts ORDER BY rowid DESC LIMIT 1")
        .into_iter()
        .next()
}

#[test]
fn console_passwd_round_trip_and_bad_names() {
    let p = Project::new("");
    let line = user_line(&p, "mrossi", "una frase lunga");
    let hash = line
        .strip_prefix("mrossi = \"")
        .and_then(|h| h.strip_suffix('"'))
        .unwrap_or_else(|| panic!("printed {line:?}"));
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(
        !line.contains("una frase lunga"),
        "the password is never printed"
    );
    // Every hash has its own salt.
    assert_ne!(user_line(&p, "mrossi", "una frase lunga"), line);

    let (code, out, err) = passwd(&p, "M Rossi", "x");
    assert_eq!((code, out.as_str()), (2, ""), "not an OS user name: {err}");
    assert!(err.contains("OS user name"), "{err}");
    let (code, _, err) = passwd(&p, "mrossi", "");
    assert_eq!(code, 2, "{err}");

    // The hash verifies through the real login; a wrong password does not.
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("gw.jsonl"));
    let p = project(&gw, 10, "[console.users]");
    let config = std::fs::read_to_string(p.path("allerta.toml")).unwrap();
    p.write("allerta.toml", &format!("{config}{line}\n"));
    let serve = Serve::start(&p, &ENV);
    let base = format!("http://127.0.0.1:{}", serve.port);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = client(None);
        let (status, cookie) = login(&c, &base, "mrossi", "una frase lunga").await;
        assert_eq!(status, 303);
        let cookie = cookie.expect("a new session");
        let r = c
            .get(format!("{base}/console/"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("mrossi"));
        let (status, cookie) = login(&c, &base, "mrossi", "una frase lungA").await;
        assert_eq!((status, cookie), (401, None));
    });

    // A password in clear where the hash goes is a config error (exit 2).
    p.write(
        "allerta.toml",
        &format!("{config}mrossi = \"una frase lunga\"\n"),
    );
    let (code, _, err) = p.run(&["status"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("console.users.mrossi") && err.contains("argon2id"),
        "{err}"
    );
}

#[test]
fn console_passwd_on_a_terminal_does_not_echo_the_password() {
    let p = Project::new("");
    let transcript = p.path("terminal.txt");
    let status = Command::new("/usr/bin/python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/servers/pty_answer.py"
        ))
        .args(["Password: ", "segreto-sul-terminale"])
        .arg(&transcript)
        .arg("--")
        .arg(assert_cmd::cargo::cargo_bin("allerta"))
        .args(["console", "passwd", "mrossi"])
        .current_dir(p.dir.path())
        .status()
        .expect("python3 pty");
    let screen = std::fs::read_to_string(&transcript).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(screen.contains("mrossi = \"$argon2id$"), "{screen}");
    assert!(
        !screen.contains("segreto-sul-terminale"),
        "echoed: {screen}"
    );
}

#[test]
fn cookies_csrf_and_the_login_limit_over_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("gw.jsonl"));
    let probe = Project::new("");
    let users = format!(
        "[console.users]\n{}\n{}",
        user_line(&probe, "root", "segreto-root"),
        user_line(&probe, "bob", "segreto-bob")
    );
    let p = project(&gw, 10, &users);
    let serve = Serve::start(&p, &ENV);
    let base = format!("http://127.0.0.1:{}", serve.port);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = client(None);
        // Not logged in: pages send to the login, the JSON says 401.
        let r = c.get(format!("{base}/console/")).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/console/login");
        let r = c
            .get(format!("{base}/console/alerts/x/live.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);

        // Cookie flags on loopback: HttpOnly, SameSite=Strict, no Secure.
        let r = c.get(format!("{base}/console/login")).send().await.unwrap();
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        let (cookie, header) = set_cookie(&r).unwrap();
        assert!(header.contains("HttpOnly"), "{header}");
        assert!(header.contains("SameSite=Strict"), "{header}");
        assert!(
            !header.contains("Secure"),
            "plain HTTP on loopback: {header}"
        );
        let id = cookie.split_once('=').unwrap().1;
        assert_eq!(id.len(), 64, "256 random bits in hex: {id}");
        let csrf = csrf_of(&r.text().await.unwrap());

        // POST without the CSRF token, or with a wrong one: 403.
        for form in [
            vec![("user", "root"), ("password", "segreto-root")],
            vec![
                ("csrf", "0".repeat(64).leak() as &str),
                ("user", "root"),
                ("password", "segreto-root"),
            ],
        ] {
            let r = c
                .post(format!("{base}/console/login"))
                .header("cookie", &cookie)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403);
        }
        // Without a session at all: 403 too.
        let r = c
            .post(format!("{base}/console/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("user", "root"),
                ("password", "segreto-root"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);

        // Logged in: logout and approvals need the token as well.
        let (status, session) = login(&c, &base, "root", "segreto-root").await;
        assert_eq!(status, 303);
        let session = session.unwrap();
        assert_ne!(session, cookie, "a new session id after login");
        for path in [
            "/console/logout",
            "/console/approvals/x/approve",
            "/console/approvals/x/reject",
        ] {
            let r = c
                .post(format!("{base}{path}"))
                .header("cookie", &session)
                .form(&[("nothing", "")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{path}");
        }
        let page = c
            .get(format!("{base}/console/"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        let token = csrf_of(&page.text().await.unwrap());
        let r = c
            .post(format!("{base}/console/logout"))
            .header("cookie", &session)
            .form(&[("csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let r = c
            .get(format!("{base}/console/"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            303,
            "logged out: the session is gone server-side"
        );

        // Five failures for root from 127.0.0.1: then 429, even with the
        // right password, for that name and for that address.
        for _ in 0..5 {
            assert_eq!(login(&c, &base, "root", "wrong").await.0, 401);
        }
        assert_eq!(login(&c, &base, "root", "segreto-root").await.0, 429);
        assert_eq!(
            login(&c, &base, "bob", "segreto-bob").await.0,
            429,
            "the address is blocked"
        );
        let other = client(Some("127.0.0.2"));
        assert_eq!(
            login(&other, &base, "root", "segreto-root").await.0,
            429,
            "the name is blocked"
        );
        assert_eq!(login(&other, &base, "bob", "segreto-bob").await.0, 303);
    });
    drop(serve);

    // secure_cookies = true: Secure even on loopback.
    let config = std::fs::read_to_string(p.path("allerta.toml")).unwrap();
    p.write(
        "allerta.toml",
        &config.replace("[console]\n", "[console]\nsecure_cookies = true\n"),
    );
    let serve = Serve::start(&p, &ENV);
    let base = format!("http://127.0.0.1:{}", serve.port);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let r = client(None)
            .get(format!("{base}/console/login"))
            .send()
            .await
            .unwrap();
        let (_, header) = set_cookie(&r).unwrap();
        assert!(header.contains("; Secure"), "{header}");
    });
}

#[test]
fn chromium_sees_live_counts_the_not_reached_list_the_report_pdf_and_phone_width() {
    let out = artifacts();
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("gw.jsonl"));
    let probe = Project::new("");
    let users = format!(
        "[console.users]\n{}",
        user_line(&probe, "root", "segreto-root")
    );
    // 2 messages a second: the send takes about 12 s with the page open.
    let p = project(&gw, 2, &users);
    let mut rows = phones("+39333", 22);
    rows.extend(phones("+39339", 1)); // invalid number: fails at once
    rows.extend(phones("+39338", 1)); // accepted, then undeliverable
    p.contacts("cittadini.csv", &rows);
    let serve = Serve::start(&p, &ENV);
    let base = format!("http://127.0.0.1:{}", serve.port);

    let ready = dir.path().join("ready");
    let named = dir.path().join("alert");
    let go = dir.path().join("go");
    let args = serde_json::json!({
        "base": base, "user": "root", "password": "segreto-root", "bad_password": "sbagliata",
        "out": out, "ready_file": ready, "alert_file": named, "go_file": go, "watch_seconds": 90,
    });
    let child = browser("live", &args);
    // The browser is logged in before the send starts.
    let start = Instant::now();
    while !ready.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the browser never logged in"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let send = p
        .cmd()
        .envs(ENV)
        .args([
            "send",
            "messaggio",
            "--var",
            "testo=Evacuare la zona argine",
            "--all",
            "--yes",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start send");
    let alert = loop {
        if let Some(id) = latest_alert(&p) {
            break id;
        }
        assert!(
            start.elapsed() < Duration::from_secs(150),
            "no alert planned"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::fs::write(&named, &alert).unwrap();
    let status = send.wait_with_output().expect("send").status;
    assert_eq!(status.code(), Some(3), "two deliveries fail");
    wait_for_counts(&p, &ENV, "22 delivered, 2 failed", |c| {
        c["delivered"] == 22 && c["failed"] == 2
    });
    let audit_before = p.sql("SELECT COUNT(*), MAX(hash) FROM audit");
    let deliveries_before = p.sql("SELECT SUM(updated_at), COUNT(*) FROM deliveries");
    std::fs::write(&go, "").unwrap();
    let seen = browser_result(child);
    // Browsing every page changed nothing (SPEC §17: only approvals do).
    assert_eq!(p.sql("SELECT COUNT(*), MAX(hash) FROM audit"), audit_before);
    assert_eq!(
        p.sql("SELECT SUM(updated_at), COUNT(*) FROM deliveries"),
        deliveries_before
    );

    // Login: the bad password is refused on the page, the good one lands on the list.
    assert_eq!(seen["bad_login_error"], "Wrong user name or password.");
    assert!(
        seen["bad_login_url"]
            .as_str()
            .unwrap()
            .ends_with("/console/login")
    );
    assert!(
        seen["after_login_url"]
            .as_str()
            .unwrap()
            .ends_with("/console/")
    );
    assert!(
        seen["alerts_listed"][0]
            .as_str()
            .unwrap()
            .ends_with(&format!("/console/alerts/{alert}")),
        "{}",
        seen["alerts_listed"]
    );

    // Live: the page was open while sending and its counts moved without a reload.
    let samples = seen["samples"].as_array().unwrap();
    let gone_out = |s: &serde_json::Value| {
        ["sms.sent", "sms.delivered", "sms.failed"]
            .iter()
            .map(|k| s["counts"][k].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let distinct: BTreeSet<u64> = samples.iter().map(gone_out).collect();
    assert!(
        samples.iter().any(|s| s["state"] == "sending"),
        "the page was opened during the send: {samples:?}"
    );
    assert!(
        distinct.len() >= 3,
        "counts moved while the page stayed open: {distinct:?}"
    );
    assert_eq!(seen["not_reloaded"], true);
    for s in samples {
        let c = &s["counts"];
        let out = c["sms.sent"].as_u64().unwrap() + c["sms.delivered"].as_u64().unwrap();
        assert_eq!(
            s["out"],
            out.to_string(),
            "the summary line follows the table: {s}"
        );
    }
    assert_eq!(seen["final_counts"]["sms.delivered"], 22);
    assert_eq!(seen["final_counts"]["sms.failed"], 2);
    assert_eq!(
        seen["map_polygons"], 2,
        "both zones drawn, from the config polygons"
    );
    assert_eq!(seen["zones"]["centro.recipients"], "24");
    assert_eq!(seen["zones"]["centro.reached"], "22");

    // Not reached: exactly the ledger's recipients with no sent/delivered/acknowledged delivery.
    let (_, export, _) = json_env(&p, &ENV, &["export", &alert, "--format", "json"]);
    let mut expected = BTreeSet::new();
    let mut reached = BTreeSet::new();
    for d in export["deliveries"].as_array().unwrap() {
        let r = d["recipient"].as_str().unwrap().to_owned();
        if ["sent", "delivered"].contains(&d["state"].as_str().unwrap())
            || !d["acknowledged_at"].is_null()
        {
            reached.insert(r.clone());
        }
        expected.insert(r);
    }
    let expected: BTreeSet<String> = expected.difference(&reached).cloned().collect();
    assert_eq!(expected.len(), 2, "{expected:?}");
    let listed: BTreeSet<String> = seen["not_reached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["recipient"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, expected);
    for row in seen["not_reached"].as_array().unwrap() {
        let phone = if row["recipient"] == "p39339-1" {
            "+393390000001"
        } else {
            "+393380000001"
        };
        assert_eq!(row["phones"], serde_json::json!([phone]), "{row}");
        assert!(
            row["text"].as_str().unwrap().contains("Persona 1"),
            "the name from the contact file: {row}"
        );
    }
    // The CSV says the same.
    let csv = not_reached_csv(&base, &alert);
    std::fs::write(out.join("console-not-reached.csv"), &csv).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let from_csv: BTreeSet<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_owned(), r[2].to_owned())
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("p39338-1".to_owned(), "+393380000001".to_owned()),
        ("p39339-1".to_owned(), "+393390000001".to_owned()),
    ]
    .into();
    assert_eq!(from_csv, want, "{csv}");

    // The report: chart, failures by reason, audit trail; printed to a real PDF.
    assert_eq!(seen["report_has_chart"], true);
    let failures = seen["report_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "two different reasons: {failures:?}");
    assert!(
        failures
            .iter()
            .any(|f| f.as_str().unwrap().contains("21211")),
        "{failures:?}"
    );
    assert!(seen["report_audit_rows"].as_u64().unwrap() >= 1);
    let pdf = seen["pdf"].as_str().unwrap();
    let info = Command::new("pdfinfo")
        .arg(pdf)
        .output()
        .expect("pdfinfo (poppler-utils)");
    let info = String::from_utf8_lossy(&info.stdout);
    let pages: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo: {info}"));
    assert!(pages >= 1, "{info}");
    let text = Command::new("pdftotext")
        .args([pdf, "-"])
        .output()
        .expect("pdftotext");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("After-action report") && text.contains(&alert),
        "{text}"
    );
    assert!(
        !text.contains("Log out"),
        "the print stylesheet hides the navigation"
    );

    // 390 px: no page scrolls sideways; nothing came from outside.
    assert_eq!(
        seen["contrast"].as_object().unwrap().len(),
        6,
        "login and five pages checked"
    );
    assert_eq!(seen["narrow_width"], 390);
    for (page, ok) in seen["narrow"].as_object().unwrap() {
        assert_eq!(ok, true, "{page} scrolls horizontally at 390 px");
    }
    assert_eq!(seen["external_resources"], serde_json::json!([]));
    // WCAG AA contrast of every text, as Chromium computes the colours.
    for (page, bad) in seen["contrast"].as_object().unwrap() {
        assert_eq!(
            bad,
            &serde_json::json!([]),
            "{page}: text below AA contrast"
        );
    }
    drop(serve);
}

#[test]
fn approvals_in_the_console_refuse_the_creator_then_approve_and_reject() {
    let out = artifacts();
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("gw.jsonl"));
    let probe = Project::new("");
    // The tests run as root, so root creates the alerts.
    let users = format!(
        "[console.users]\n{}\n{}",
        user_line(&probe, "root", "segreto-root"),
        user_line(&probe, "bob", "segreto-bob")
    );
    // carol may log in but is not an approver.
    let users = format!("{users}\n{}", user_line(&probe, "carol", "segreto-carol"));
    let p = project(&gw, 20, &users);
    let config = std::fs::read_to_string(p.path("allerta.toml")).unwrap();
    p.write(
        "allerta.toml",
        &format!("{config}\n[approval]\napprovers = [\"root\", \"bob\"]\n"),
    );
    p.contacts("cittadini.csv", &phones("+39333", 3));
    let serve = Serve::start(&p, &ENV);
    let base = format!("http://127.0.0.1:{}", serve.port);
    let send = |testo: &str| {
        let (code, doc, err) = json_env(
            &p,
            &ENV,
            &[
                "send",
                "messaggio",
                "--var",
                &format!("testo={testo}"),
                "--all",
                "--yes",
            ],
        );
        assert_eq!(code, 0, "{err}");
        doc["alert"]["id"].as_str().unwrap().to_owned()
    };
    let state = |id: &str| json_env(&p, &ENV, &["status", id]).1["alert"]["state"].clone();
    let first = send("Primo");
    assert_eq!(state(&first), "awaiting_approval");

    let press = |user: &str, password: &str, action: &str, alert: &str| {
        browser_result(browser(
            "approvals",
            &serde_json::json!({ "base": base, "user": user, "password": password,
                                 "action": action, "alert": alert, "out": out }),
        ))
    };
    // The creator cannot approve their own alert.
    let refused = press("root", "segreto-root", "approve", &first);
    assert_eq!(refused["title"], "Refused", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("created by `root`"),
        "{refused}"
    );
    assert_eq!(state(&first), "awaiting_approval");

    // A console user who is not an approver is refused (403) by the same rule.
    let answer = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = client(None);
        let (_, session) = login(&c, &base, "carol", "segreto-carol").await;
        let session = session.unwrap();
        let page = c
            .get(format!("{base}/console/approvals"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        let csrf = csrf_of(&page.text().await.unwrap());
        let r = c
            .post(format!("{base}/console/approvals/{first}/approve"))
            .header("cookie", &session)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(answer.0, 403, "{}", answer.1);
    assert!(answer.1.contains("is not an approver"), "{}", answer.1);
    assert_eq!(state(&first), "awaiting_approval");

    // Another approver can; the resume timer then sends it.
    let approved = press("bob", "segreto-bob", "approve", &first);
    assert_eq!(approved["title"], "Approved", "{approved}");
    assert_eq!(state(&first), "sending", "approved, left for the timer");
    assert_eq!(
        p.sql(&format!(
            "SELECT decided_by FROM alerts WHERE id = '{first}'"
        )),
        ["bob"]
    );
    let audit = p.sql(&format!(
        "SELECT operator FROM audit WHERE alert_id = '{first}' AND command = 'approve'"
    ));
    assert_eq!(audit, ["bob"]);
    let (code, _, err) = json_env(&p, &ENV, &["resume"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(state(&first), "settled");
    let counts = json_env(&p, &ENV, &["status", &first]).1["channels"]["sms"].clone();
    assert_eq!(counts["total"], 3);
    assert_eq!(counts["pending"], 0);

    // Reject: nothing is ever sent.
    let second = send("Secondo");
    let rejected = press("bob", "segreto-bob", "reject", &second);
    assert_eq!(rejected["title"], "Rejected", "{rejected}");
    assert_eq!(state(&second), "rejected");
    let counts = json_env(&p, &ENV, &["status", &second]).1["channels"]["sms"].clone();
    assert_eq!(
        (counts["sent"].clone(), counts["skipped"].clone()),
        (0.into(), 3.into())
    );
    drop(serve);
}

/// Somebody no channel of the alert reaches (a landline in the `phone`
/// column and no voice channel: no delivery at all) is on the not-reached
/// list too, with the number a volunteer can call.
#[test]
fn the_not_reached_list_includes_those_no_channel_of_the_alert_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("gw.jsonl"));
    let probe = Project::new("");
    let users = format!(
        "[console.users]\n{}",
        user_line(&probe, "root", "segreto-root")
    );
    let p = project(&gw, 50, &users);
    let mut rows = phones("+39333", 2);
    rows.push("fisso-1,Signora Fissa,055 1234567,,,centro,cittadini,it,".into());
    p.contacts("cittadini.csv", &rows);
    let serve = Serve::start(&p, &ENV);
    let base = format!("http://127.0.0.1:{}", serve.port);
    let (code, doc, err) = json_env(
        &p,
        &ENV,
        &[
            "send",
            "messaggio",
            "--var",
            "testo=Prova",
            "--all",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let alert = doc["alert"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        doc["channels"]["sms"]["total"], 2,
        "the landline gets no SMS: {doc}"
    );

    let csv = not_reached_csv(&base, &alert);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let fissa = rows
        .iter()
        .find(|r| &r[0] == "fisso-1")
        .unwrap_or_else(|| panic!("the landline-only citizen is missing:\n{csv}"));
    assert_eq!(&fissa[2], "+390551234567", "{csv}");
    assert!(
        fissa
            .iter()
            .any(|f| f.contains("no channel of this alert reaches them")),
        "{csv}"
    );
}
