//! The systemd units' sandbox against what allerta really does: each
//! daemon and one-shot command runs under `strace -f` doing its real work
//! (check with an SMTP login and getMe, a drill, resume; `serve` answering
//! requests; `bot` answering /start; the daemons stopped with SIGTERM), and
//! every syscall it made must be allowed by its unit's SystemCallFilter=,
//! every socket family by RestrictAddressFamilies=. A blocked syscall kills
//! a service with SIGSYS: this is the test that it never happens.
//!
//! Needs systemd-analyze and strace; outside CI their absence skips with a
//! note, under CI (`CI` set) it fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn unit_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn directives<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// True when `tool --version`-like `args` runs; panics under CI when not.
fn have(tool: &str, args: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing (.ci/run installs it)"
        );
        eprintln!("note: {tool} not found, skipping");
    }
    ok
}

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
    if !have("systemd-analyze", &["--version"]) || !have("strace", &["-V"]) {
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
dlr_token = "dlr-token-1-sixteen-chars"
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
        "/sms/dlr?token=dlr-token-1-sixteen-chars&d=1&t=x&status=1",
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
