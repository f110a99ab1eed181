//! The systemd units in `systemd/` (SPEC §9): hardened to an exposure of at
//! most 2.0 by `systemd-analyze security`, clean for `systemd-analyze
//! verify`, and wired the way the install guide says (system user, state
//! directory, secrets only through LoadCredential=).
//!
//! Needs `systemd-analyze` (Debian's systemd package). Outside CI a machine
//! without it skips with a note; under CI (`CI` set) its absence fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const SERVICES: &[&str] = &[
    "allerta-bot.service",
    "allerta-serve.service",
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
    for daemon in ["allerta-bot.service", "allerta-serve.service"] {
        let text = unit_text(daemon);
        assert_eq!(directives(&text, "Restart"), ["on-failure"], "{daemon}");
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

// ---- the seccomp filter against the syscalls allerta really makes --------

/// Group name → members (syscalls and `@group` references), from
/// `systemd-analyze syscall-filter`.
fn syscall_groups() -> std::collections::HashMap<String, Vec<String>> {
    let out = Command::new("systemd-analyze")
        .arg("syscall-filter")
        .output()
        .expect("run systemd-analyze syscall-filter");
    let mut groups = std::collections::HashMap::new();
    let mut current: Option<String> = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(name) = line.strip_prefix('@') {
            current = Some(format!("@{}", name.trim()));
            groups.insert(format!("@{}", name.trim()), Vec::new());
        } else if let Some(group) = &current {
            let item = line.trim();
            if !item.is_empty() && !item.starts_with('#') {
                groups.get_mut(group).expect("group").push(item.to_owned());
            }
        }
    }
    groups
}

fn expand(
    groups: &std::collections::HashMap<String, Vec<String>>,
    name: &str,
    into: &mut std::collections::BTreeSet<String>,
) {
    match groups.get(name) {
        Some(members) => {
            for m in members {
                expand(groups, m, into);
            }
        }
        None => {
            into.insert(name.to_owned());
        }
    }
}

/// The syscalls a unit's SystemCallFilter= lines allow (allow-list, then
/// `~` lines remove).
fn allowed_syscalls(unit: &str) -> std::collections::BTreeSet<String> {
    let groups = syscall_groups();
    let mut allowed = std::collections::BTreeSet::new();
    let mut denied = std::collections::BTreeSet::new();
    for line in directives(unit, "SystemCallFilter") {
        let (deny, list) = match line.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        for item in list.split_whitespace() {
            expand(&groups, item, if deny { &mut denied } else { &mut allowed });
        }
    }
    allowed.retain(|s| !denied.contains(s));
    allowed
}

/// Syscall names and socket families seen in an `strace -f` log.
fn traced(
    log: &str,
) -> (
    std::collections::BTreeSet<String>,
    std::collections::BTreeSet<String>,
) {
    let mut calls = std::collections::BTreeSet::new();
    let mut families = std::collections::BTreeSet::new();
    for line in log.lines() {
        let rest = line.split_once(' ').map_or(line, |(_, r)| r).trim_start();
        if rest.starts_with("<...") || rest.starts_with("---") || rest.starts_with("+++") {
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        calls.insert(name.to_owned());
        if name == "socket"
            && let Some(family) = args.split(',').next()
        {
            families.insert(family.trim().to_owned());
        }
    }
    (calls, families)
}

/// A child process killed when the test ends, even by a panic.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // A tracer's own children first (strace's tracee would outlive it).
        let pid = self.0.id();
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
            for child in children.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", child]).status();
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Is this process root? (The units run allerta as an unprivileged user.)
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `allerta --config CONFIG ARGS` under `strace -f`, as `nobody` when we
/// are root (like `User=allerta`: as root SQLite would also fchown() its
/// WAL files, which a service never does), with the credentials directory
/// and JSON logs as the units set them.
fn under_strace(ctx: &TraceCtx, trace: &Path, args: &[&str]) -> Command {
    let mut cmd = if ctx.as_root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "strace",
        ]);
        c
    } else {
        Command::new("strace")
    };
    cmd.args(["-f", "-qq", "-o"])
        .arg(trace)
        .arg(env!("CARGO_BIN_EXE_allerta"))
        .arg("--config")
        .arg(&ctx.config)
        .args(args)
        .current_dir(&ctx.dir)
        .env("CREDENTIALS_DIRECTORY", &ctx.creds)
        .env("ALLERTA_LOG_FORMAT", "json")
        .env("ALLERTA_LOG", "info")
        .env_remove("ALLERTA_CONFIG");
    cmd
}

struct TraceCtx {
    as_root: bool,
    dir: PathBuf,
    config: PathBuf,
    creds: PathBuf,
}

/// Starts a daemon under strace and waits for its first stdout line (or,
/// for one that prints nothing, returns at once).
fn start_traced(ctx: &TraceCtx, trace: &Path, args: &[&str], wait_line: bool) -> KillOnDrop {
    let mut child = KillOnDrop(
        under_strace(ctx, trace, args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start a daemon under strace"),
    );
    if wait_line {
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.0.stdout.take().expect("stdout")),
            &mut first,
        )
        .expect("the daemon's first line");
        assert!(!first.is_empty(), "allerta {args:?} did not start");
    }
    child
}

/// SIGTERM to the traced allerta (strace's child), as systemd stops a
/// unit; asserts a clean exit and returns the syscalls and socket families.
fn stop_traced(
    mut tracer: KillOnDrop,
    trace: &Path,
    what: &str,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let pid = tracer.0.id();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .expect("strace's children");
    let child = children.split_whitespace().next().expect("allerta's pid");
    let killed = Command::new("kill")
        .args(["-TERM", child])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tracer.0.wait().expect("the daemon stops");
    assert!(
        status.success(),
        "{what} did not stop cleanly on SIGTERM: {status:?}"
    );
    traced(&std::fs::read_to_string(trace).expect("trace"))
}

/// One HTTP/1.0 request on loopback; the whole reply.
fn http(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    std::io::Write::write_all(
        &mut s,
        format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .expect("request");
    let mut reply = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut reply);
    reply
}

/// A test server printing `READY <port>`, killed at the end of the test.
fn ready_server(mut command: Command) -> (KillOnDrop, u16) {
    let mut child = KillOnDrop(
        command
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start a test server"),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.0.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("READY line");
    let port = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not READY: {line:?}"));
    (child, port)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

const TELEGRAM_TOKEN: &str = "123456:TEST-token";

/// Runs the real binary under strace for the work the units do — check
/// (SMTP login, getMe), a drill and resume (resume and check units), `serve`
/// answering requests (serve unit) and `bot` answering /start (bot unit),
/// the daemons stopped with SIGTERM — and checks that every syscall made is
/// allowed by the unit's SystemCallFilter= and every socket family by its
/// RestrictAddressFamilies=: a blocked syscall kills the service (SIGSYS).
#[test]
fn the_units_seccomp_filter_allows_every_syscall_allerta_makes() {
    if !have_systemd_analyze() {
        return;
    }
    let have_strace = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_strace {
        assert!(
            std::env::var_os("CI").is_none(),
            "strace is missing (.ci/run installs it)"
        );
        eprintln!("note: strace not found, skipping");
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let (_smtp, smtp_port) = ready_server({
        let mut c = Command::new("/usr/bin/python3");
        c.arg(repo.join("tests/servers/smtp_server.py"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--auth",
                "allerta:pw",
                "--maildir",
            ])
            .arg(dir.path().join("mail"));
        c
    });
    let (_telegram, tg_port) = ready_server({
        let mut c = Command::new("/usr/bin/python3");
        c.arg(repo.join("tests/servers/telegram_server.py")).args([
            "--port",
            "0",
            "--token",
            TELEGRAM_TOKEN,
        ]);
        c
    });
    let serve_port = free_port();
    std::fs::create_dir_all(dir.path().join("contacts")).expect("contacts");
    std::fs::copy(
        repo.join("contacts/personale.csv"),
        dir.path().join("contacts/personale.csv"),
    )
    .expect("copy contacts");
    let config = format!(
        r#"[general]
database = "allerta.db"
templates_dir = "{templates}"
sender = "Comune di Prova"
sender_id = "pc@comune.example.it"
[zones.centro]
name = "Centro"
[zones.fibbiana]
name = "Fibbiana"
[zones.sammontana]
name = "Sammontana"
[zones.turbone]
name = "Turbone"
[zones.ambrogiana]
name = "Ambrogiana"
[zones.camaioni]
name = "Camaioni"
[drill]
audience = ["group:esercitazione"]
[channels.sms]
transport = "outbox"
[channels.email]
transport = "smtp"
url = "smtp://127.0.0.1:{smtp_port}"
from = "PC <pc@comune.example.it>"
username = "allerta"
password_file = "$CREDENTIALS_DIRECTORY/smtp-password"
[channels.telegram]
transport = "bot-api"
api_url = "http://127.0.0.1:{tg_port}"
token_file = "$CREDENTIALS_DIRECTORY/telegram-token"
[serve]
listen = "127.0.0.1:{serve_port}"
dlr_token = "dlr-token-1"
"#,
        templates = repo.join("templates").display()
    );
    std::fs::write(dir.path().join("allerta.toml"), config).expect("config");
    let creds = dir.path().join("credentials");
    std::fs::create_dir_all(&creds).expect("credentials");
    std::fs::write(creds.join("smtp-password"), "pw\n").expect("credential");
    std::fs::write(creds.join("telegram-token"), format!("{TELEGRAM_TOKEN}\n"))
        .expect("credential");
    let ctx = TraceCtx {
        as_root: running_as_root(),
        dir: dir.path().to_owned(),
        config: dir.path().join("allerta.toml"),
        creds: creds.clone(),
    };
    if ctx.as_root {
        use std::os::unix::fs::PermissionsExt;
        for d in [dir.path(), creds.as_path(), &dir.path().join("contacts")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        }
    }

    // allerta serve, kept running while check looks for it.
    let serve_trace = dir.path().join("trace-serve");
    let serve = start_traced(&ctx, &serve_trace, &["serve"], true);
    for path in [
        "/healthz",
        "/metrics",
        "/sms/dlr?token=dlr-token-1&d=1&t=x&status=1",
    ] {
        let reply = http(serve_port, "GET", path, "");
        assert!(reply.starts_with("HTTP/1."), "{path}: {reply}");
    }

    let mut oneshots = String::new();
    for (i, args) in [
        vec!["check"],
        vec!["send", "esercitazione", "--drill", "--channel", "sms"],
        vec!["resume"],
    ]
    .iter()
    .enumerate()
    {
        let trace = dir.path().join(format!("trace-{i}"));
        let out = under_strace(&ctx, &trace, args)
            .output()
            .expect("run strace");
        assert!(
            out.status.success(),
            "allerta {args:?} under strace failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        oneshots.push_str(&std::fs::read_to_string(&trace).expect("trace"));
    }
    let serve_traced = stop_traced(serve, &serve_trace, "serve");
    assert!(
        serve_traced.0.contains("accept4") || serve_traced.0.contains("accept"),
        "{:?}",
        serve_traced.0
    );

    // allerta bot: /start from a citizen, answered, then SIGTERM.
    let bot_trace = dir.path().join("trace-bot");
    let bot = start_traced(&ctx, &bot_trace, &["bot"], false);
    let update = r#"{"message": {"chat_id": 42, "text": "/start"}}"#;
    assert!(http(tg_port, "POST", "/_test/updates", update).contains(" 200 "));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let sent = http(tg_port, "GET", "/_test/sent", "").to_lowercase();
        if sent.contains("\"method\": \"sendmessage\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bot did not answer /start: {sent}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let bot_traced = stop_traced(bot, &bot_trace, "bot");

    let oneshot_traced = traced(&oneshots);
    assert!(
        oneshot_traced.0.contains("connect") && oneshot_traced.0.contains("openat"),
        "trace parsed: {:?}",
        oneshot_traced.0
    );
    // execve is strace starting the binary; systemd does it before seccomp.
    for (service, (calls, families)) in [
        ("allerta-resume.service", &oneshot_traced),
        ("allerta-check.service", &oneshot_traced),
        ("allerta-serve.service", &serve_traced),
        ("allerta-bot.service", &bot_traced),
    ] {
        let unit = unit_text(service);
        let allowed = allowed_syscalls(&unit);
        let blocked: Vec<&String> = calls.iter().filter(|c| !allowed.contains(*c)).collect();
        assert!(
            blocked.is_empty(),
            "{service} would kill allerta on: {blocked:?}"
        );
        let allowed_families: Vec<&str> = directives(&unit, "RestrictAddressFamilies")
            .iter()
            .flat_map(|l| l.split_whitespace())
            .collect();
        for family in families {
            assert!(
                allowed_families.contains(&family.as_str()),
                "{service}: socket family {family} not in RestrictAddressFamilies"
            );
        }
    }
}

/// The configuration resolves every configured secret when it loads, so a
/// unit missing one credential could not even start: each loads them all.
#[test]
fn every_service_loads_every_credential_the_config_may_name() {
    let all: Vec<String> = SERVICES
        .iter()
        .flat_map(|s| {
            directives(&unit_text(s), "LoadCredential")
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for service in SERVICES {
        let text = unit_text(service);
        let mine = directives(&text, "LoadCredential");
        for c in &all {
            assert!(
                mine.contains(&c.as_str()),
                "{service} lacks LoadCredential={c}"
            );
        }
    }
    for id in [
        "telegram-token",
        "sms-password",
        "smtp-password",
        "dlr-token",
    ] {
        assert!(all.iter().any(|c| c.starts_with(&format!("{id}:"))), "{id}");
    }
}
