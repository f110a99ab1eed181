//! The systemd units in `systemd/` (SPEC §9): hardened to an exposure of at
//! most 2.0 by `systemd-analyze security`, clean for `systemd-analyze
//! verify`, and wired the way the install guide says (system user, state
//! directory, secrets only through LoadCredential=).
//!
//! Needs `systemd-analyze` (Debian's systemd package). Outside CI a machine
//! without it skips with a note; under CI (`CI` set) its absence fails.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const SERVICES: &[&str] = &[
    "allerta-bot.service",
    "allerta-serve.service",
    "allerta-watch.service",
    "allerta-resume.service",
    "allerta-check.service",
];
const TIMERS: &[&str] = &["allerta-resume.timer", "allerta-check.timer"];
const MAX_EXPOSURE: f64 = 2.0;

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd")
}

fn unit_text(name: &str) -> String {
    std::fs::read_to_string(units_dir().join(name))
        .unwrap_or_else(|e| panic!("systemd/{name}: {e}"))
}

/// True when systemd-analyze can run; panics under CI when it cannot.
fn have_systemd_analyze() -> bool {
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing: install Debian's systemd package (.ci/run)"
        );
        eprintln!("note: systemd-analyze not found, skipping");
    }
    ok
}

/// Parses "→ Overall exposure level for X.service: 1.1 OK 🙂".
fn exposure(output: &str) -> Option<f64> {
    let line = output
        .lines()
        .find(|l| l.contains("Overall exposure level for"))?;
    let (_, rest) = line.split_once("Overall exposure level for")?;
    let (_, score) = rest.split_once(": ")?;
    score.split_whitespace().next()?.parse().ok()
}

#[test]
fn exposure_parser_reads_the_score() {
    let out = "✗ UMask= …  0.1\n\n→ Overall exposure level for allerta-bot.service: 1.1 OK 🙂\n";
    assert_eq!(exposure(out), Some(1.1));
    assert_eq!(
        exposure("→ Overall exposure level for x.service: 9.6 UNSAFE 😨"),
        Some(9.6)
    );
    assert_eq!(exposure("nothing here"), None);
}

#[test]
fn every_service_scores_at_most_2_0_in_systemd_analyze_security() {
    if !have_systemd_analyze() {
        return;
    }
    for service in SERVICES {
        let path = units_dir().join(service);
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
            .arg(&path)
            .output()
            .expect("run systemd-analyze security");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let score = exposure(&stdout).unwrap_or_else(|| {
            panic!("{service}: no exposure score in the output:\n{stdout}\n{stderr}")
        });
        assert!(
            score <= MAX_EXPOSURE,
            "{service}: exposure {score} > {MAX_EXPOSURE}; what is exposed:\n{}",
            stdout
                .lines()
                .filter(|l| l.starts_with('✗'))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            out.status.success(),
            "{service}: exit {:?}\n{stderr}",
            out.status
        );
    }
}

#[test]
fn a_bare_unit_scores_above_the_threshold_so_the_check_can_fail() {
    if !have_systemd_analyze() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bare.service");
    std::fs::write(&path, "[Service]\nExecStart=/usr/bin/allerta serve\n").expect("write");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze security");
    let score = exposure(&String::from_utf8_lossy(&out.stdout)).expect("a score");
    assert!(score > MAX_EXPOSURE, "bare unit scored {score}");
}

/// Copies the units to a temp dir with ExecStart pointing at the binary
/// under test (verify fails when the ExecStart binary does not exist).
fn units_with_built_binary(dir: &Path) -> Vec<PathBuf> {
    let bin = env!("CARGO_BIN_EXE_allerta");
    SERVICES
        .iter()
        .chain(TIMERS)
        .map(|name| {
            let text =
                unit_text(name).replace("ExecStart=/usr/bin/allerta", &format!("ExecStart={bin}"));
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write unit copy");
            path
        })
        .collect()
}

#[test]
fn systemd_analyze_verify_prints_nothing_for_any_unit() {
    if !have_systemd_analyze() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let units = units_with_built_binary(dir.path());
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .current_dir(dir.path())
        .output()
        .expect("run systemd-analyze verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "systemd-analyze verify complained (exit {:?}):\n{stdout}{stderr}",
        out.status
    );
}

#[test]
fn systemd_analyze_verify_output_is_noticed_when_a_unit_is_wrong() {
    if !have_systemd_analyze() {
        return;
    }
    // The property the previous test relies on: a typo prints on stderr.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("typo.service");
    std::fs::write(
        &path,
        format!(
            "[Service]\nExecStart={}\nRestart=on-failur\nProtectSystem=strickt\n",
            env!("CARGO_BIN_EXE_allerta")
        ),
    )
    .expect("write");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze verify");
    assert!(!out.stderr.is_empty(), "verify said nothing about typos");
}

fn directives<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn services_run_as_the_allerta_user_with_state_dir_journal_and_credentials() {
    for service in SERVICES {
        let text = unit_text(service);
        let exec = directives(&text, "ExecStart");
        assert_eq!(exec.len(), 1, "{service}: one ExecStart");
        assert!(
            exec[0].starts_with("/usr/bin/allerta "),
            "{service}: {exec:?}"
        );
        assert_eq!(directives(&text, "User"), ["allerta"], "{service}");
        assert_eq!(
            directives(&text, "StateDirectory"),
            ["allerta"],
            "{service}"
        );
        assert!(
            directives(&text, "Environment").contains(&"ALLERTA_CONFIG=/etc/allerta/allerta.toml"),
            "{service}: config path"
        );
        // Logs go to the journal through stdout/stderr: no file logging.
        assert!(directives(&text, "StandardOutput").is_empty(), "{service}");
        assert!(directives(&text, "StandardError").is_empty(), "{service}");
        // Secrets only through LoadCredential=, never in the unit itself.
        let creds = directives(&text, "LoadCredential");
        assert!(!creds.is_empty(), "{service}: no LoadCredential=");
        for c in creds {
            let (id, path) = c.split_once(':').expect("ID:PATH");
            assert_eq!(path, format!("/etc/allerta/credentials/{id}"), "{service}");
        }
        for env in directives(&text, "Environment") {
            let upper = env.to_uppercase();
            assert!(
                !["PASSWORD", "TOKEN", "SECRET"]
                    .iter()
                    .any(|w| upper.contains(w)),
                "{service}: secret-looking Environment={env}"
            );
        }
        assert!(directives(&text, "EnvironmentFile").is_empty(), "{service}");
    }
    for daemon in [
        "allerta-bot.service",
        "allerta-serve.service",
        "allerta-watch.service",
    ] {
        let text = unit_text(daemon);
        assert_eq!(directives(&text, "Restart"), ["on-failure"], "{daemon}");
        // A bad token or config (exit 2) is not restarted every 5 s forever.
        assert_eq!(
            directives(&text, "RestartPreventExitStatus"),
            ["2"],
            "{daemon}"
        );
        assert!(!directives(&text, "StartLimitBurst").is_empty(), "{daemon}");
        assert_eq!(
            directives(&text, "WantedBy"),
            ["multi-user.target"],
            "{daemon}"
        );
    }
    let resume = unit_text("allerta-resume.service");
    assert!(directives(&resume, "ExecStart")[0].ends_with(" resume"));
    assert_eq!(directives(&resume, "Type"), ["oneshot"]);
    let timer = unit_text("allerta-resume.timer");
    assert!(
        !directives(&timer, "OnBootSec").is_empty(),
        "resume timer runs after boot"
    );
    assert!(
        !directives(&timer, "OnUnitInactiveSec").is_empty(),
        "resume timer repeats every few minutes"
    );
}

/// Every channel secret, for the units that send on (or check) every
/// channel: resume and check.
const EVERY_CREDENTIAL: &[&str] = &[
    "bluesky-password",
    "db-password",
    "dlr-token",
    "facebook-token",
    "mastodon-token",
    "sms-password",
    "smtp-password",
    "telegram-token",
    "voice-token",
];

/// Each unit loads only the credentials its command uses (SPEC §13): the
/// internet-facing `serve` must not hold the Telegram token, the SMTP and
/// SMS passwords or the social tokens; it holds the voice token because it
/// checks Twilio's signatures with it. The resume timer (interrupted alerts,
/// escalation steps, voice retries) and the readiness check use every
/// channel. allerta reads a secret only when the command uses it.
#[test]
fn each_service_loads_only_the_credentials_its_command_uses() {
    let expected: &[(&str, &[&str])] = &[
        // db-password: every command reaches the ledger, which may be a
        // PostgreSQL database (an empty file when it is SQLite).
        (
            "allerta-serve.service",
            &["db-password", "dlr-token", "voice-token"],
        ),
        ("allerta-bot.service", &["db-password", "telegram-token"]),
        (
            "allerta-watch.service",
            &["db-password", "smtp-password", "telegram-token"],
        ),
        ("allerta-resume.service", EVERY_CREDENTIAL),
        ("allerta-check.service", EVERY_CREDENTIAL),
    ];
    let mut all = BTreeSet::new();
    for (service, wanted) in expected {
        let text = unit_text(service);
        let mine: BTreeSet<String> = directives(&text, "LoadCredential")
            .into_iter()
            .map(|c| c.split_once(':').map_or(c, |(id, _)| id).to_owned())
            .collect();
        assert_eq!(
            mine,
            wanted
                .iter()
                .map(|w| w.to_string())
                .collect::<BTreeSet<_>>(),
            "{service} loads other credentials than its command uses"
        );
        all.extend(mine);
    }
    assert_eq!(expected.len(), SERVICES.len(), "every service is listed");
    for id in [
        "telegram-token",
        "sms-password",
        "smtp-password",
        "dlr-token",
    ] {
        assert!(all.contains(id), "{id}");
    }
    assert_eq!(
        all.iter().map(String::as_str).collect::<Vec<_>>(),
        EVERY_CREDENTIAL,
        "every credential is loaded by some unit"
    );
}

/// The site's filled-in /etc/allerta/credentials: one secret per file.
const SITE_SECRETS: &[(&str, &str)] = &[
    ("telegram-token", "123456:telegram-token-unused-here"),
    ("sms-password", "sms-password-unused-here"),
    ("smtp-password", "smtp-password-unused-here"),
    ("dlr-token", "dlr-secret-42-sixteen"),
    ("voice-token", "twilio-auth-token-for-tests"),
    ("facebook-token", "EAAtestpagetoken"),
    ("mastodon-token", "mastodon-test-token"),
    ("bluesky-password", "abcd-efgh-ijkl-mnop"),
    ("db-password", "db-password-unused-on-sqlite"),
];
const TWILIO_SID: &str = "AC00000000000000000000000000000000";

fn secret(name: &str) -> &'static str {
    SITE_SECRETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .unwrap_or_else(|| panic!("no site secret {name}"))
}

/// The credentials IDs a unit loads.
fn loaded_credentials(unit: &str) -> Vec<String> {
    directives(&unit_text(unit), "LoadCredential")
        .into_iter()
        .map(|c| c.split_once(':').map_or(c, |(id, _)| id).to_owned())
        .collect()
}

/// What systemd gives the unit as $CREDENTIALS_DIRECTORY: a copy of each
/// file it loads, and nothing else.
fn credentials_directory(ids: &[String]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("credentials dir");
    for id in ids {
        std::fs::write(dir.path().join(id), format!("{}\n", secret(id))).expect("credential");
    }
    dir
}

/// A site with the voice channel (the shipped Twilio example) and the three
/// social accounts, every secret named "$CREDENTIALS_DIRECTORY/<name>" as
/// in the shipped config, against the local Twilio and social servers.
fn voice_and_social_site(twilio: u16, social: u16, serve: u16) -> common::Project {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let voice = std::fs::read_to_string(repo.join("examples/voice-twilio.toml"))
        .expect("voice example")
        .replace(
            "https://api.twilio.com",
            &format!("http://127.0.0.1:{twilio}"),
        )
        .replace(
            "https://allerta.comune.example.it",
            &format!("http://127.0.0.1:{serve}"),
        )
        .replace("127.0.0.1:8787", &format!("127.0.0.1:{serve}"))
        .replace(
            "auth_token_env = \"TWILIO_AUTH_TOKEN\"",
            "auth_token_file = \"$CREDENTIALS_DIRECTORY/voice-token\"",
        )
        .replace(
            "dlr_token_env = \"ALLERTA_DLR_TOKEN\"",
            "dlr_token_file = \"$CREDENTIALS_DIRECTORY/dlr-token\"",
        );
    assert!(
        voice.contains("$CREDENTIALS_DIRECTORY/voice-token"),
        "{voice}"
    );
    let p = common::Project::new(&format!(
        r#"{voice}
[channels.sms]
transport = "outbox"

[channels.banner]
transport = "outbox"
public_url = "https://www.comune.example.it/allerta/"

[channels.facebook]
transport = "api"
api_url = "http://127.0.0.1:{social}/v21.0"
page_id = "104000000000001"
access_token_file = "$CREDENTIALS_DIRECTORY/facebook-token"

[channels.mastodon]
transport = "api"
instance_url = "http://127.0.0.1:{social}"
access_token_file = "$CREDENTIALS_DIRECTORY/mastodon-token"

[channels.bluesky]
transport = "api"
service_url = "http://127.0.0.1:{social}"
identifier = "protezionecivile.comune.example.it"
app_password_file = "$CREDENTIALS_DIRECTORY/bluesky-password"
"#
    ));
    p.contacts(
        "cittadini.csv",
        &["c1,Persona,+39 333 000 0001,persona@example.it,,centro,cittadini,it,".to_owned()],
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn test_servers() -> (common::Server, common::Server, tempfile::TempDir) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let logs = tempfile::tempdir().expect("logs");
    let mut twilio = Command::new("/usr/bin/python3");
    twilio
        .arg(repo.join("tests/servers/twilio_server.py"))
        .args(["--port", "0", "--sid", TWILIO_SID, "--token"])
        .arg(secret("voice-token"))
        .arg("--log")
        .arg(logs.path().join("twilio.jsonl"));
    let mut social = Command::new("/usr/bin/python3");
    social
        .arg(repo.join("tests/servers/social_server.py"))
        .args(["--port", "0"]);
    (
        common::start_server(twilio),
        common::start_server(social),
        logs,
    )
}

/// `allerta --json check` with `ids` as $CREDENTIALS_DIRECTORY: the items.
fn check_items(p: &common::Project, ids: &[String]) -> Vec<serde_json::Value> {
    let creds = credentials_directory(ids);
    let out = p
        .cmd()
        .args(["--json", "check"])
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .output()
        .expect("run allerta check");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    doc["items"].as_array().expect("items").clone()
}

fn item<'a>(items: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    items
        .iter()
        .find(|i| i["item"] == name)
        .unwrap_or_else(|| panic!("no {name} item in {items:?}"))
}

/// The readiness check, run with exactly the credentials
/// allerta-check.service loads, signs in to the voice provider and to the
/// three social accounts (the secrets reach it with the names the shipped
/// config uses). With the units' former list it could not.
#[test]
fn check_with_its_units_credentials_signs_in_to_voice_and_every_social_account() {
    let (twilio, social, _logs) = test_servers();
    let p = voice_and_social_site(twilio.port, social.port, free_port());
    let channels = ["voice", "facebook", "mastodon", "bluesky"];

    let items = check_items(&p, &loaded_credentials("allerta-check.service"));
    for channel in channels.into_iter().chain(["dlr_token"]) {
        let i = item(&items, channel);
        assert_eq!(i["ok"], true, "{channel}: {i}");
    }
    // The resume timer sends on the same channels with the same secrets.
    assert_eq!(
        loaded_credentials("allerta-resume.service"),
        loaded_credentials("allerta-check.service")
    );

    // Control: the list the units had before the voice and social channels.
    let former: Vec<String> = [
        "telegram-token",
        "sms-password",
        "smtp-password",
        "dlr-token",
    ]
    .map(str::to_owned)
    .to_vec();
    let items = check_items(&p, &former);
    for (channel, credential) in channels.into_iter().zip([
        "voice-token",
        "facebook-token",
        "mastodon-token",
        "bluesky-password",
    ]) {
        let i = item(&items, channel);
        assert_eq!(i["ok"], false, "{channel} passed without its secret: {i}");
        assert!(
            i["detail"].as_str().is_some_and(|d| d.contains(credential)),
            "{channel} failed for another reason than {credential}: {i}"
        );
    }
}

/// `allerta serve` with the voice channel on starts with exactly the
/// credentials allerta-serve.service loads (it checks Twilio's signatures
/// with the voice token) and answers /healthz; without the voice token it
/// refuses to start (exit 2), as it did under the former unit.
#[test]
fn serve_with_its_units_credentials_starts_with_the_voice_channel_on() {
    use std::io::{BufRead, BufReader, Read, Write};
    let (twilio, social, _logs) = test_servers();
    let port = free_port();
    let p = voice_and_social_site(twilio.port, social.port, port);

    let ids = loaded_credentials("allerta-serve.service");
    let creds = credentials_directory(&ids);
    let mut child = p
        .cmd()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start allerta serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read serve's first line");
    let health = std::net::TcpStream::connect(("127.0.0.1", port)).map(|mut s| {
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    });
    let _ = child.kill();
    let out = child.wait_with_output().expect("serve output");
    assert!(
        line.contains(&port.to_string()),
        "serve did not start with {ids:?}: {line:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let health = health.expect("connect to serve");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let without_voice: Vec<String> = ids.into_iter().filter(|id| id != "voice-token").collect();
    let creds = credentials_directory(&without_voice);
    let out = p
        .cmd()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .output()
        .expect("run allerta serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("channels.voice.auth_token"), "{stderr}");
}
