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

/// Each unit loads only the credentials its command uses (SPEC §13): the
/// internet-facing `serve` must not hold the Telegram token or the SMTP and
/// SMS passwords. allerta reads a secret only when the command uses it.
#[test]
fn each_service_loads_only_the_credentials_its_command_uses() {
    let expected: &[(&str, &[&str])] = &[
        ("allerta-serve.service", &["dlr-token"]),
        ("allerta-bot.service", &["telegram-token"]),
        (
            "allerta-watch.service",
            &["smtp-password", "telegram-token"],
        ),
        (
            "allerta-resume.service",
            &[
                "dlr-token",
                "sms-password",
                "smtp-password",
                "telegram-token",
            ],
        ),
        (
            "allerta-check.service",
            &[
                "dlr-token",
                "sms-password",
                "smtp-password",
                "telegram-token",
            ],
        ),
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
}
