//! The HTTP SMS transport with the shipped example configurations
//! (examples/sms-twilio.toml, examples/sms-generic-form.toml) against local
//! gateways that speak those APIs (tests/servers/sms_gateway.py), with their
//! status callbacks received by the real `allerta serve`.

mod common;
#[path = "servers/sms_support.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use common::{Server, start_server};
use support::{Serve, TOKEN, json_env, phones, wait_for_counts};

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
    )
    .expect("example config")
}

fn gateway(mode: &str, user: &str, password: &str, log: &Path, callback: Option<&str>) -> Server {
    let mut c = Command::new("/usr/bin/python3");
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/servers/sms_gateway.py"
    ))
    .args([
        "--mode",
        mode,
        "--port",
        "0",
        "--user",
        user,
        "--password",
        password,
        "--log",
    ])
    .arg(log);
    if let Some(url) = callback {
        c.args(["--callback-url", url]);
    }
    start_server(c)
}

fn logged(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// 2 delivered, 1 invalid number, 1 undeliverable, 1 transient then delivered.
fn audience() -> Vec<String> {
    let mut rows = phones("+39333", 2);
    rows.extend(phones("+39339", 1));
    rows.extend(phones("+39338", 1));
    rows.extend(phones("+39336", 1));
    rows
}

const TEXT: &str = "Allerta ROSSA: evacuazione zona argine, punto di raccolta piazza VIII Marzo. È un’emergenza 🚨";

#[test]
fn twilio_compatible_api_with_the_example_config() {
    const SID: &str = "AC00000000000000000000000000000000";
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gateway.jsonl");
    let gw = gateway("twilio", SID, "twilio-secret", &log, None);
    let config = example("sms-twilio.toml")
        .replace(
            "https://api.twilio.com",
            &format!("http://127.0.0.1:{}", gw.port),
        )
        .replace("https://allerta.comune.example.it", "__SERVE__")
        .replace("127.0.0.1:8787", "127.0.0.1:0");
    let p = support::project(&config);
    p.contacts("cittadini.csv", &audience());
    let env = [
        ("TWILIO_AUTH_TOKEN", "twilio-secret"),
        ("ALLERTA_DLR_TOKEN", TOKEN),
    ];
    let _serve = Serve::start(&p, &env);

    let (code, doc, err) = json_env(
        &p,
        &env,
        &[
            "send",
            "messaggio",
            "--var",
            &format!("testo={TEXT}"),
            "--all",
            "--yes",
        ],
    );

    assert_eq!(code, 3, "the invalid number fails at once: {err}\n{doc}");
    let got = logged(&log);
    assert_eq!(got.len(), 4, "{got:?}");
    for m in &got {
        assert_eq!(m["text"], TEXT);
        assert_eq!(m["from"], "+15005550006");
    }
    wait_for_counts(&p, &env, "3 delivered, 2 failed", |c| {
        c["delivered"] == 3 && c["failed"] == 2
    });
    let sids = p.sql("SELECT provider_id FROM deliveries WHERE state = 'delivered' ORDER BY id");
    assert!(
        sids.iter().all(|s| s.starts_with("SM")),
        "provider ids from /sid: {sids:?}"
    );
    let error = |prefix: &str| {
        p.sql(&format!(
            "SELECT last_error FROM deliveries WHERE address LIKE '{prefix}%'"
        ))[0]
            .clone()
    };
    assert!(error("+39339").contains("21211"), "{}", error("+39339"));
    assert!(error("+39338").contains("undelivered") && error("+39338").contains("30003"));
    let transient = p.sql("SELECT COUNT(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.address LIKE '+39336%' AND a.outcome = 'transient'");
    assert_eq!(transient, ["1"], "the 503 was retried");
}

#[test]
fn twilio_wrong_credentials_stop_the_channel() {
    const SID: &str = "AC00000000000000000000000000000000";
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gateway.jsonl");
    let gw = gateway("twilio", SID, "twilio-secret", &log, None);
    let config = example("sms-twilio.toml")
        .replace(
            "https://api.twilio.com",
            &format!("http://127.0.0.1:{}", gw.port),
        )
        .replace("https://allerta.comune.example.it", "http://127.0.0.1:9");
    let p = support::project(&config);
    p.contacts("cittadini.csv", &phones("+39333", 20));
    let env = [("TWILIO_AUTH_TOKEN", "wrong"), ("ALLERTA_DLR_TOKEN", TOKEN)];

    let out = p
        .cmd()
        .envs(env)
        .args([
            "send",
            "messaggio",
            "--var",
            "testo=Prova",
            "--all",
            "--yes",
        ])
        .output()
        .unwrap();

    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("channel sms stopped") && err.contains("401"),
        "{err}"
    );
    assert_eq!(
        p.sql("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'"),
        ["20"]
    );
    assert!(logged(&log).is_empty());
}

#[test]
fn generic_form_api_with_the_example_config() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gateway.jsonl");
    let config = example("sms-generic-form.toml")
        .replace("https://allerta.comune.example.it", "__SERVE__")
        .replace("127.0.0.1:8787", "127.0.0.1:0");
    // The provider's URL is known only once the gateway runs, and the
    // gateway needs serve's URL for its reports: fill it in afterwards.
    let p = support::project(&config.replace("https://sms.provider.example", "__GATEWAY__"));
    p.contacts("cittadini.csv", &audience());
    let env = [
        ("ALLERTA_SMS_PASSWORD", "form-secret"),
        ("ALLERTA_DLR_TOKEN", TOKEN),
    ];
    let serve = Serve::start(&p, &env);
    let callback = format!("http://127.0.0.1:{}/sms/report?token={TOKEN}", serve.port);
    let gw = gateway(
        "form",
        "comune-montelupo",
        "form-secret",
        &log,
        Some(&callback),
    );
    let text = std::fs::read_to_string(p.path("allerta.toml")).unwrap();
    p.write(
        "allerta.toml",
        &text.replace("__GATEWAY__", &format!("http://127.0.0.1:{}", gw.port)),
    );

    let (code, doc, err) = json_env(
        &p,
        &env,
        &[
            "send",
            "messaggio",
            "--var",
            &format!("testo={TEXT}"),
            "--all",
            "--yes",
        ],
    );

    assert_eq!(
        code, 3,
        "\"ERR 21\" with HTTP 200 is a rejection: {err}\n{doc}"
    );
    let got = logged(&log);
    assert_eq!(got.len(), 4, "{got:?}");
    for m in &got {
        assert_eq!(m["text"], TEXT);
        assert!(!m["to"].as_str().unwrap().starts_with('+'), "to_digits");
        let reference = m["ref"].as_str().unwrap();
        assert_eq!(
            p.sql(&format!(
                "SELECT provider_id FROM deliveries WHERE id = {reference}"
            )),
            [m["id"].as_str().unwrap()],
            "our reference is the delivery id; the provider id comes from \"OK id=…\""
        );
    }
    wait_for_counts(&p, &env, "3 delivered, 2 failed", |c| {
        c["delivered"] == 3 && c["failed"] == 2
    });
    let error = |prefix: &str| {
        p.sql(&format!(
            "SELECT last_error FROM deliveries WHERE address LIKE '{prefix}%'"
        ))[0]
            .clone()
    };
    assert!(
        error("+39339").contains("ERR 21 invalid number"),
        "{}",
        error("+39339")
    );
    assert!(error("+39338").contains("UNDELIV") && error("+39338").contains("switched off"));
}

#[test]
fn rate_per_second_is_honoured_with_bounded_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gateway.jsonl");
    let gw = gateway("form", "comune-montelupo", "form-secret", &log, None);
    // The example's rate: 20 messages per second.
    let config = example("sms-generic-form.toml")
        .replace(
            "https://sms.provider.example",
            &format!("http://127.0.0.1:{}", gw.port),
        )
        .replace("https://allerta.comune.example.it", "http://127.0.0.1:9")
        .replace("127.0.0.1:8787", "127.0.0.1:0");
    let p = support::project(&config);
    p.contacts("cittadini.csv", &phones("+39333", 41));
    let env = [
        ("ALLERTA_SMS_PASSWORD", "form-secret"),
        ("ALLERTA_DLR_TOKEN", TOKEN),
    ];

    let (code, doc, err) = json_env(
        &p,
        &env,
        &[
            "send",
            "messaggio",
            "--var",
            "testo=Prova",
            "--all",
            "--yes",
        ],
    );

    assert_eq!(code, 0, "{err}\n{doc}");
    let mut at: Vec<f64> = logged(&log)
        .iter()
        .map(|m| m["at"].as_f64().unwrap())
        .collect();
    at.sort_by(f64::total_cmp);
    assert_eq!(at.len(), 41);
    // 41 messages at 20/s: 40 intervals of 50 ms, never a burst.
    let span = at[40] - at[0];
    assert!(span >= 1.9, "41 messages in {span:.2}s: faster than 20/s");
    assert!(
        span <= 6.0,
        "41 messages in {span:.2}s: far slower than 20/s"
    );
    // Even pacing, not a burst per second (generous for a loaded machine).
    for w in at.windows(21) {
        assert!(
            w[20] - w[0] >= 0.8,
            "21 messages within {:.2}s",
            w[20] - w[0]
        );
    }
}
