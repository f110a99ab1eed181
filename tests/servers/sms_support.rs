//! Shared by the SMS tests: a template whose SMS is one variable, the real
//! `allerta serve` on a free port, and waiting on ledger counts.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Project;

pub const TOKEN: &str = "dlr-secret-42-sixteen";

/// A template whose SMS is exactly the `testo` variable.
pub const TEMPLATE: &str = r#"
title = "Messaggio"
event = "Messaggio"
category = "Other"
severity = "Minor"
urgency = "Immediate"
certainty = "Observed"
[variables.testo]
description = "Il testo"
example = "Prova"
[it]
headline = "Messaggio"
sms = "{{ testo }}"
"#;

/// A project with `channels` (TOML; `__SERVE__` stands for serve's base
/// URL) and the `messaggio` template.
pub fn project(channels: &str) -> Project {
    let p = Project::new(channels);
    p.write("templates/messaggio.toml", TEMPLATE);
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    let config = config
        .lines()
        .map(|l| {
            if l.starts_with("templates_dir") {
                "templates_dir = \"templates\"".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    p.write("allerta.toml", &config);
    p
}

/// `allerta serve` on a free port; `__SERVE__` in the config then points at it.
pub struct Serve {
    child: Child,
    pub port: u16,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    pub fn start(p: &Project, envs: &[(&str, &str)]) -> Self {
        let mut child = p
            .cmd()
            .envs(envs.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start allerta serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("serve prints its address");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("serve said {line:?}"));
        let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
        p.write(
            "allerta.toml",
            &config.replace("__SERVE__", &format!("http://127.0.0.1:{port}")),
        );
        Self { child, port }
    }

    /// SIGTERM, then the exit code (within a generous bound).
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// Contact rows with numbers `<prefix>0000001…`, SMS only.
pub fn phones(prefix: &str, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| {
            let id = prefix.trim_start_matches('+');
            format!("p{id}-{i},Persona {i},{prefix}{i:07},,,centro,cittadini,it,sms")
        })
        .collect()
}

/// Runs with --json and extra environment; (code, stdout doc, stderr).
pub fn json_env(
    p: &Project,
    envs: &[(&str, &str)],
    args: &[&str],
) -> (i32, serde_json::Value, String) {
    let out = p
        .cmd()
        .envs(envs.iter().copied())
        .arg("--json")
        .args(args)
        .output()
        .expect("run allerta");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    (out.status.code().unwrap_or(-1), doc, stderr)
}

/// The latest alert's SMS counts.
pub fn sms_counts(p: &Project, envs: &[(&str, &str)]) -> serde_json::Value {
    json_env(p, envs, &["status"]).1["channels"]["sms"].clone()
}

pub fn wait_for_counts(
    p: &Project,
    envs: &[(&str, &str)],
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) {
    let start = Instant::now();
    loop {
        let c = sms_counts(p, envs);
        if ok(&c) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "timed out waiting for {what}; sms counts: {c}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
