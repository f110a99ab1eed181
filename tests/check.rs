//! `allerta check` (SPEC §6): against a live local SMTP server it passes;
//! with the server stopped, a wrong password, an untrusted certificate or a
//! missing login it fails naming `email` and saying what to fix. Input
//! problems (config, templates, contacts) exit 2, the database and the
//! channels exit 1. Nothing is ever sent, and no secret is printed.

mod common;
#[path = "servers/kannel.rs"]
mod kannel;

use std::path::Path;
use std::process::Command;

use common::{Project, maildir_messages, smtp_server, synthetic_rows};

const PASSWORD: &str = "s3cret-Allerta-pw";
const PASSWORD_ENV: &str = "ALLERTA_TEST_SMTP_PASSWORD";

fn email_channel(port: u16, auth: bool) -> String {
    let login = if auth {
        format!("username = \"allerta\"\npassword_env = \"{PASSWORD_ENV}\"\n")
    } else {
        String::new()
    };
    format!(
        r#"[channels.sms]
transport = "outbox"

[channels.email]
transport = "smtp"
url = "smtp://127.0.0.1:{port}"
from = "Protezione Civile <pc@comune.example.it>"
timeout = "10s"
{login}"#
    )
}

fn project(channels: &str) -> Project {
    let p = Project::new(channels);
    p.contacts("cittadini.csv", &synthetic_rows(3, "example.it"));
    p
}

/// Runs `check` (with `--json` when asked) with the SMTP password set.
fn check(p: &Project, password: &str, json: bool) -> (i32, String, String) {
    let mut cmd = p.cmd();
    cmd.env(PASSWORD_ENV, password);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.arg("check").output().expect("run allerta check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn line<'a>(stdout: &'a str, item: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(item))
        .unwrap_or_else(|| panic!("no line for {item} in:\n{stdout}"))
}

fn json_item<'a>(doc: &'a serde_json::Value, item: &str) -> &'a serde_json::Value {
    doc["items"]
        .as_array()
        .expect("items array")
        .iter()
        .find(|i| i["item"] == item)
        .unwrap_or_else(|| panic!("no item {item} in {doc}"))
}

#[test]
fn check_passes_against_a_live_smtp_server_and_sends_nothing() {
    let maildir = tempfile::tempdir().expect("maildir");
    let auth = format!("allerta:{PASSWORD}");
    let server = smtp_server(maildir.path(), &["--auth", &auth]);
    let p = project(&email_channel(server.port, true));

    let (code, out, err) = check(&p, PASSWORD, false);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for item in [
        "config",
        "templates",
        "contacts",
        "database",
        "outbox",
        "sms",
        "email",
    ] {
        assert!(line(&out, item).starts_with("ok"), "{item} not ok:\n{out}");
    }
    let email = line(&out, "email");
    assert!(
        email.contains("as allerta") && email.contains("logged in"),
        "{email}"
    );
    assert!(email.contains("sender accepted, nothing sent"), "{email}");
    assert!(out.contains("ready:"), "{out}");
    assert!(
        !out.contains(PASSWORD) && !err.contains(PASSWORD),
        "password printed"
    );
    assert!(
        maildir_messages(maildir.path()).is_empty(),
        "check sent mail"
    );

    let (code, out, err) = check(&p, PASSWORD, true);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["ready"], true);
    assert_eq!(json_item(&doc, "email")["ok"], true);
    assert!(json_item(&doc, "email").get("fix").is_none());
}

#[test]
fn check_fails_naming_email_when_the_smtp_server_is_stopped() {
    let maildir = tempfile::tempdir().expect("maildir");
    let port = smtp_server(maildir.path(), &[]).port; // dropped: stopped, port free
    let p = project(&email_channel(port, true));

    let (code, out, err) = check(&p, PASSWORD, false);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let email = line(&out, "email");
    assert!(email.starts_with("FAIL"), "{email}");
    assert!(email.contains("cannot connect"), "{email}");
    assert!(email.contains("fix: start the SMTP server"), "{email}");
    assert!(!email.contains("fix: os error"), "{email}");
    // The rest is still checked and ready.
    assert!(line(&out, "database").starts_with("ok"), "{out}");
    assert!(err.contains("not ready: email"), "{err}");

    let (code, out, _) = check(&p, PASSWORD, true);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["ready"], false);
    let email = json_item(&doc, "email");
    assert_eq!(email["ok"], false);
    assert!(
        email["fix"]
            .as_str()
            .is_some_and(|f| f.contains("SMTP server")),
        "{email}"
    );
}

#[test]
fn check_fails_naming_email_and_the_password_when_credentials_are_wrong() {
    let maildir = tempfile::tempdir().expect("maildir");
    let auth = format!("allerta:{PASSWORD}");
    let server = smtp_server(maildir.path(), &["--auth", &auth]);
    let p = project(&email_channel(server.port, true));
    let wrong = "not-the-Password-42";

    let (code, out, err) = check(&p, wrong, false);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let email = line(&out, "email");
    assert!(email.starts_with("FAIL"), "{email}");
    assert!(email.contains("refused the login of `allerta`"), "{email}");
    assert!(email.contains("535"), "{email}");
    assert!(
        email.contains("fix: check channels.email.username and password"),
        "{email}"
    );
    for secret in [wrong, PASSWORD] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "secret printed"
        );
    }
}

#[test]
fn check_fails_when_the_server_demands_a_login_that_is_not_configured() {
    let maildir = tempfile::tempdir().expect("maildir");
    let auth = format!("allerta:{PASSWORD}");
    let server = smtp_server(maildir.path(), &["--auth", &auth]);
    let p = project(&email_channel(server.port, false));

    let (code, out, _) = check(&p, PASSWORD, false);
    assert_eq!(code, 1, "{out}");
    let email = line(&out, "email");
    assert!(email.contains("requires authentication"), "{email}");
    assert!(
        email.contains("fix: set channels.email.username"),
        "{email}"
    );
}

#[test]
fn check_fails_on_an_untrusted_certificate_and_passes_with_its_ca_file() {
    let certs = tempfile::tempdir().expect("certs");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/make_cert.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(certs.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run make_cert.sh");
    assert!(status.success());
    let maildir = tempfile::tempdir().expect("maildir");
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    let auth = format!("allerta:{PASSWORD}");
    let server = smtp_server(
        maildir.path(),
        &[
            "--tls-cert",
            cert.to_str().expect("utf-8 path"),
            "--tls-key",
            key.to_str().expect("utf-8 path"),
            "--auth",
            &auth,
        ],
    );
    let p = project(&email_channel(server.port, true));
    let (code, out, _) = check(&p, PASSWORD, false);
    assert_eq!(code, 1, "{out}");
    let email = line(&out, "email");
    assert!(
        email.starts_with("FAIL") && email.contains("TLS with"),
        "{email}"
    );
    assert!(email.contains("fix: certificate not trusted?"), "{email}");
    assert!(email.contains("channels.email.ca_file"), "{email}");

    // The private CA in ca_file: STARTTLS, then AUTH over TLS, as sending does.
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    p.write(
        "allerta.toml",
        &config.replace(
            "timeout = \"10s\"",
            &format!(
                "timeout = \"10s\"\nca_file = \"{}\"",
                certs.path().join("ca.pem").display()
            ),
        ),
    );
    let (code, out, err) = check(&p, PASSWORD, false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(line(&out, "email").contains("logged in"), "{out}");
    assert!(
        maildir_messages(maildir.path()).is_empty(),
        "check sent mail"
    );
}

#[test]
fn an_http_sms_gateway_is_checked_for_reachability_and_says_the_login_is_not() {
    let server = health_server();
    let http = |port: u16| {
        format!(
            r#"[channels.sms]
transport = "http"
url = "http://127.0.0.1:{port}/api/send"
username = "comune"
password = "x"
sender = "ComuneML"
[channels.sms.http]
method = "POST"
auth = "none"
body = "form"
success_status = [200]
[channels.sms.http.fields]
to = "{{{{ to_digits }}}}"
text = "{{{{ text }}}}"
"#
        )
    };
    let p = project(&http(server.port));
    let (code, out, err) = check(&p, PASSWORD, false);
    assert_eq!(code, 0, "{out}{err}");
    let sms = line(&out, "sms");
    assert!(sms.starts_with("ok") && sms.contains("reachable"), "{sms}");
    assert!(sms.contains("only be verified by a real send"), "{sms}");

    drop(server);
    let (code, out, _) = check(&p, PASSWORD, false);
    assert_eq!(code, 1, "{out}");
    let sms = line(&out, "sms");
    assert!(
        sms.starts_with("FAIL") && sms.contains("not reachable"),
        "{sms}"
    );
    assert!(sms.contains("fix: check channels.sms.url"), "{sms}");
}

#[test]
fn an_invalid_config_fails_the_config_item_with_exit_2_and_still_prints_json() {
    let p = project(
        "[channels.email]\ntransport = \"outbox\"\nfrom = \"a <a@b.it>\"\nmax_conections = 3\n",
    );
    let (code, out, _) = check(&p, PASSWORD, true);
    assert_eq!(code, 2, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["ready"], false);
    let config = json_item(&doc, "config");
    assert_eq!(config["ok"], false);
    assert!(
        config["detail"]
            .as_str()
            .is_some_and(|d| d.contains("max_conections")),
        "{config}"
    );
}

#[test]
fn bad_contacts_and_no_templates_fail_their_items_with_exit_2() {
    let p = Project::new("[channels.sms]\ntransport = \"outbox\"\n");
    p.contacts(
        "cittadini.csv",
        &["c1,Rossi,not-a-phone,,,centro,,it,".to_owned()],
    );
    let (code, out, _) = check(&p, PASSWORD, false);
    assert_eq!(code, 2, "{out}");
    let contacts = line(&out, "contacts");
    assert!(
        contacts.starts_with("FAIL") && contacts.contains("cittadini.csv"),
        "{contacts}"
    );
    assert!(
        contacts.contains("fix: run `allerta contacts check`"),
        "{contacts}"
    );
    assert!(line(&out, "templates").starts_with("ok"), "{out}");

    let empty = tempfile::tempdir().expect("empty templates dir");
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    p.write(
        "allerta.toml",
        &config.replace(
            &templates.display().to_string(),
            &empty.path().display().to_string(),
        ),
    );
    let (code, out, _) = check(&p, PASSWORD, false);
    assert_eq!(code, 2, "{out}");
    assert!(line(&out, "templates").contains("no templates in"), "{out}");
}

#[test]
fn an_unwritable_database_fails_the_database_item() {
    let p = project("[channels.sms]\ntransport = \"outbox\"\n");
    // A regular file where the database's directory should be: even root
    // cannot create the database there.
    p.write("blocked", "not a directory");
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    p.write(
        "allerta.toml",
        &config.replace(
            "database = \"allerta.db\"",
            "database = \"blocked/allerta.db\"",
        ),
    );
    let (code, out, _) = check(&p, PASSWORD, false);
    assert_eq!(code, 1, "{out}");
    let db = line(&out, "database");
    assert!(
        db.starts_with("FAIL") && db.contains("blocked/allerta.db"),
        "{db}"
    );
    assert!(db.contains("fix: make"), "{db}");
}

#[test]
fn json_logs_for_daemons_are_structured_and_carry_no_secret() {
    let maildir = tempfile::tempdir().expect("maildir");
    let auth = format!("allerta:{PASSWORD}");
    let server = smtp_server(maildir.path(), &["--auth", &auth]);
    let p = project(&email_channel(server.port, true));
    // As under systemd: INVOCATION_ID set, stderr not a terminal.
    let out = p
        .cmd()
        .env(PASSWORD_ENV, PASSWORD)
        .env("ALLERTA_LOG", "trace")
        .env("INVOCATION_ID", "0123456789abcdef")
        .env_remove("ALLERTA_LOG_FORMAT")
        .arg("check")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no logs at trace level");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{l}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("\"item\":\"email\"")),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "password in the logs");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(PASSWORD));

    // On a terminal-less run without systemd, logs stay human lines.
    let out = p
        .cmd()
        .env(PASSWORD_ENV, PASSWORD)
        .env("ALLERTA_LOG", "debug")
        .env_remove("INVOCATION_ID")
        .env_remove("ALLERTA_LOG_FORMAT")
        .arg("check")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().any(|l| l.contains("DEBUG")), "{stderr}");
    assert!(!stderr.trim_start().starts_with('{'), "{stderr}");
}

/// A minimal HTTP server answering 200 on /healthz (what `allerta serve`
/// answers), 404 elsewhere.
fn health_server() -> common::Server {
    let script = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print("READY", s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut c = Command::new("/usr/bin/python3");
    c.args(["-c", script]);
    common::start_server(c)
}

fn serve_section(port: u16) -> String {
    format!(
        "[channels.sms]\ntransport = \"outbox\"\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\ndlr_token = \"t0ken-of-sixteen-chars\"\n"
    )
}

#[test]
fn check_probes_serve_health_and_fails_naming_serve_when_it_is_down() {
    let server = health_server();
    let p = project(&serve_section(server.port));
    let (code, out, _) = check(&p, PASSWORD, false);
    assert_eq!(code, 0, "{out}");
    let serve = line(&out, "serve");
    assert!(
        serve.starts_with("ok") && serve.contains("/healthz"),
        "{serve}"
    );

    drop(server);
    let (code, out, _) = check(&p, PASSWORD, false);
    assert_eq!(code, 1, "{out}");
    let serve = line(&out, "serve");
    assert!(
        serve.starts_with("FAIL") && serve.contains("not reachable"),
        "{serve}"
    );
    assert!(serve.contains("fix: start allerta serve"), "{serve}");
    assert!(!out.contains("t0ken-of-sixteen-chars"), "DLR token printed");
}

#[test]
fn check_as_root_refuses_to_create_the_database_in_the_allerta_users_directory() {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().nth(1).map(|x| x == "0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("note: not root, nothing to check");
        return;
    }
    let p = project("[channels.sms]\ntransport = \"outbox\"\n");
    // Like /var/lib/allerta: owned by the service user (here: nobody).
    let state = p.path("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let chown = Command::new("chown")
        .arg("nobody")
        .arg(&state)
        .status()
        .expect("chown");
    assert!(chown.success());
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    p.write(
        "allerta.toml",
        &config.replace(
            "database = \"allerta.db\"",
            "database = \"state/allerta.db\"",
        ),
    );
    let (code, out, _) = check(&p, PASSWORD, false);
    assert_eq!(code, 1, "{out}");
    let db = line(&out, "database");
    assert!(db.contains("would be created owned by root"), "{db}");
    assert!(db.contains("fix: run allerta as the owner"), "{db}");
    assert!(
        !state.join("allerta.db").exists(),
        "check created a root-owned database"
    );
}

#[test]
fn check_names_banner_when_its_output_directory_is_not_writable() {
    let banner = |dir: &str| {
        format!(
            "[channels.banner]\ntransport = \"files\"\noutput_dir = \"{dir}\"\npublic_url = \"https://www.comune.example.it/allerta/\"\n"
        )
    };
    let p = project(&banner("public"));
    let (code, out, _) = check(&p, PASSWORD, false);
    assert_eq!(code, 0, "{out}");
    let line_ok = line(&out, "banner");
    assert!(
        line_ok.starts_with("ok") && line_ok.contains("writable"),
        "{line_ok}"
    );

    let p = project(&banner("blocked/public"));
    p.write("blocked", "a file, not a directory");
    let (code, out, _) = check(&p, PASSWORD, false);
    assert_eq!(code, 1, "{out}");
    let fail = line(&out, "banner");
    assert!(
        fail.starts_with("FAIL") && fail.contains("blocked/public"),
        "{fail}"
    );
    assert!(fail.contains("(channels.banner.output_dir)"), "{fail}");
}

fn kannel_channel(url: &str, extra: &str) -> String {
    format!(
        "[channels.sms]\ntransport = \"kannel\"\nurl = \"{url}\"\nusername = \"{}\"\npassword_env = \"ALLERTA_TEST_SMS_PASSWORD\"\nsender = \"ComuneML\"\n{extra}",
        kannel::USER
    )
}

fn check_sms(p: &Project, password: &str) -> (i32, String, String) {
    let out = p
        .cmd()
        .env("ALLERTA_TEST_SMS_PASSWORD", password)
        .arg("check")
        .output()
        .expect("run allerta check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_logs_in_to_a_live_kannel_and_fails_naming_sms_when_stopped_or_refused() {
    let k = kannel::Kannel::start(kannel::Route::Fake);
    let p = project(&kannel_channel(&k.sendsms_url(), ""));

    let (code, out, err) = check_sms(&p, kannel::PASSWORD);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let sms = line(&out, "sms");
    assert!(
        sms.starts_with("ok") && sms.contains("login of `allerta` accepted"),
        "{sms}"
    );
    assert!(sms.contains("nothing sent"), "{sms}");
    assert!(!out.contains(kannel::PASSWORD) && !err.contains(kannel::PASSWORD));

    let wrong = "wrong-Kannel-pw";
    let (code, out, err) = check_sms(&p, wrong);
    assert_eq!(code, 1, "{out}");
    let sms = line(&out, "sms");
    assert!(
        sms.starts_with("FAIL") && sms.contains("refused the login of `allerta`"),
        "{sms}"
    );
    assert!(sms.contains("403"), "{sms}");
    assert!(
        sms.contains("fix: check channels.sms.username and the password"),
        "{sms}"
    );
    assert!(
        !out.contains(wrong) && !err.contains(wrong),
        "password printed"
    );

    // Nothing reached the fake SMSC: the probe never names a recipient.
    assert!(
        k.received().is_empty(),
        "check sent an SMS: {:?}",
        k.received()
    );

    drop(k);
    let (code, out, err) = check_sms(&p, kannel::PASSWORD);
    assert_eq!(code, 1, "{out}");
    let sms = line(&out, "sms");
    assert!(
        sms.starts_with("FAIL") && sms.contains("not reachable"),
        "{sms}"
    );
    assert!(sms.contains("fix: start Kannel"), "{sms}");
    assert!(!out.contains(kannel::PASSWORD) && !err.contains(kannel::PASSWORD));
}

#[test]
fn check_finds_the_real_allerta_serve_at_the_dlr_url() {
    let k = kannel::Kannel::start(kannel::Route::Fake);
    let port = kannel::free_port();
    let p = project(&kannel_channel(
        &k.sendsms_url(),
        &format!(
            "dlr_url = \"http://127.0.0.1:{port}/sms/dlr\"\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\ndlr_token = \"dlr-T0ken-sixteen-chars\"\n"
        ),
    ));
    let mut serve = p
        .cmd()
        .env("ALLERTA_TEST_SMS_PASSWORD", kannel::PASSWORD)
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start allerta serve");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serve.stdout.take().expect("stdout")),
        &mut first,
    )
    .expect("serve prints its address");
    assert!(first.contains(&format!("127.0.0.1:{port}")), "{first}");

    let (code, out, err) = check_sms(&p, kannel::PASSWORD);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(line(&out, "serve").starts_with("ok"), "{out}");

    let _ = serve.kill();
    let _ = serve.wait();
    let (code, out, _) = check_sms(&p, kannel::PASSWORD);
    assert_eq!(code, 1, "{out}");
    let line_serve = line(&out, "serve");
    assert!(line_serve.starts_with("FAIL"), "{line_serve}");
    assert!(
        line_serve.contains("fix: start allerta serve"),
        "{line_serve}"
    );
    assert!(
        !out.contains("dlr-T0ken-sixteen-chars"),
        "DLR token printed"
    );
}

const TELEGRAM_TOKEN: &str = "123456:TEST-token";

fn telegram_server() -> common::Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/telegram_server.py");
    let mut c = Command::new("/usr/bin/python3");
    c.arg(script)
        .args(["--port", "0", "--token", TELEGRAM_TOKEN]);
    common::start_server(c)
}

#[test]
fn check_calls_getme_on_the_bot_api_and_fails_naming_telegram_on_a_bad_token_or_no_server() {
    let server = telegram_server();
    let p = project(&format!(
        "[channels.telegram]\ntransport = \"bot-api\"\napi_url = \"http://127.0.0.1:{}\"\ntoken_file = \"telegram.token\"\n",
        server.port
    ));
    p.write("telegram.token", &format!("{TELEGRAM_TOKEN}\n"));
    let (code, out, err) = check(&p, PASSWORD, false);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let tg = line(&out, "telegram");
    assert!(tg.starts_with("ok") && tg.contains("getMe: @"), "{tg}");
    assert!(
        !out.contains(TELEGRAM_TOKEN) && !err.contains(TELEGRAM_TOKEN),
        "token printed"
    );

    let wrong = "654321:WRONG-token";
    p.write("telegram.token", &format!("{wrong}\n"));
    let (code, out, err) = check(&p, PASSWORD, false);
    assert_eq!(code, 1, "{out}");
    let tg = line(&out, "telegram");
    assert!(
        tg.starts_with("FAIL") && tg.contains("refused the bot token"),
        "{tg}"
    );
    assert!(tg.contains("fix: check the bot token"), "{tg}");
    assert!(
        !out.contains(wrong) && !err.contains(wrong),
        "token printed"
    );

    p.write("telegram.token", &format!("{TELEGRAM_TOKEN}\n"));
    drop(server);
    let (code, out, err) = check(&p, PASSWORD, false);
    assert_eq!(code, 1, "{out}");
    let tg = line(&out, "telegram");
    assert!(
        tg.starts_with("FAIL") && tg.contains("cannot connect"),
        "{tg}"
    );
    assert!(
        tg.contains("fix: check that this host reaches channels.telegram.api_url"),
        "{tg}"
    );
    assert!(
        !out.contains(TELEGRAM_TOKEN) && !err.contains(TELEGRAM_TOKEN),
        "token printed"
    );
}
