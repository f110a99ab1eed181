//! SMS gateways and `serve`: failed deliveries and `retry`, Kannel's
//! per-part reports, an HTTP gateway's reports, `/healthz` and `/metrics`.

use super::*;

// ---------------------------------------------------------------------
// Failed deliveries, `status --failed`, `retry`
// ---------------------------------------------------------------------

/// A project with the `messaggio` template (SMS = `testo`) and `channels`.
pub fn messaggio_project(channels: &str, backend: &Backend) -> Project {
    let p = Project::with_database(channels, backend);
    p.write("templates/messaggio.toml", support::TEMPLATE);
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    let config: Vec<String> = config
        .lines()
        .map(|l| {
            if l.starts_with("templates_dir") {
                "templates_dir = \"templates\"".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    p.write("allerta.toml", &config.join("\n"));
    p
}

/// The generic-form example configuration, gateway at `__GATEWAY__`.
pub fn form_config() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sms-generic-form.toml"),
    )
    .expect("example config")
    .replace("https://allerta.comune.example.it", "__SERVE__")
    .replace("127.0.0.1:8787", "127.0.0.1:0")
    .replace("https://sms.provider.example", "__GATEWAY__")
}

pub fn form_gateway(log: &Path, callback: Option<&str>) -> Server {
    let mut c = Command::new("/usr/bin/python3");
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/servers/sms_gateway.py"
    ))
    .args([
        "--mode",
        "form",
        "--port",
        "0",
        "--user",
        "comune-montelupo",
        "--password",
        "form-secret",
        "--log",
    ])
    .arg(log);
    if let Some(url) = callback {
        c.args(["--callback-url", url]);
    }
    start_server(c)
}

pub fn gateway_log(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("gateway log line"))
        .collect()
}

pub fn point_at_gateway(p: &Project, url: &str) {
    let text = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    p.write("allerta.toml", &text.replace("__GATEWAY__", url));
}

pub const SMS_ENV: [(&str, &str); 2] = [
    ("ALLERTA_SMS_PASSWORD", "form-secret"),
    ("ALLERTA_DLR_TOKEN", support::TOKEN),
];

pub fn failed_deliveries_are_listed_and_retry_sends_them_once_the_gateway_is_up(backend: &Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("gateway.jsonl");
    let p = messaggio_project(&form_config(), backend);
    p.contacts("cittadini.csv", &support::phones("+39333", 3));
    // Nobody listens there: every attempt is a refused connection
    // (transient) until the retries are spent.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let text = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    p.write(
        "allerta.toml",
        &text.replace("__GATEWAY__", &format!("http://127.0.0.1:{closed}")),
    );
    let send = [
        "send",
        "messaggio",
        "--var",
        "testo=Prova di allerta",
        "--all",
        "--yes",
    ];
    let (code, doc, err) = support::json_env(&p, &SMS_ENV, &send);
    assert_eq!(code, 3, "{err}\n{doc}");
    let id = id_of(&doc);
    assert_eq!(doc["channels"]["sms"]["failed"], 3, "{doc}");
    let (code, failed, err) = support::json_env(&p, &SMS_ENV, &["status", &id, "--failed"]);
    assert_eq!(code, 0, "{err}");
    let listed = failed["deliveries"].as_array().expect("deliveries");
    assert_eq!(listed.len(), 3, "{failed}");
    for d in listed {
        assert_eq!(d["state"], "failed", "{d}");
        assert_eq!(
            d["attempts"], 4,
            "[retry] max_attempts counts every attempt: {d}"
        );
        assert!(
            d["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{d}"
        );
    }

    // The gateway is back (same transport kind, a new URL): retry.
    let gw = form_gateway(&log, None);
    let text = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    p.write(
        "allerta.toml",
        &text.replace(
            &format!("127.0.0.1:{closed}"),
            &format!("127.0.0.1:{}", gw.port),
        ),
    );
    let (code, doc, err) = support::json_env(&p, &SMS_ENV, &["retry", &id, "--yes"]);
    assert_eq!(code, 0, "{err}\n{doc}");
    let status = support::json_env(&p, &SMS_ENV, &["status", &id]).1;
    assert_eq!(status["channels"]["sms"]["failed"], 0, "{status}");
    assert_eq!(status["channels"]["sms"]["sent"], 3, "{status}");
    let mut to: Vec<String> = gateway_log(&log)
        .iter()
        .map(|m| m["to"].as_str().unwrap_or_default().to_owned())
        .collect();
    to.sort();
    assert_eq!(
        to,
        ["393330000001", "393330000002", "393330000003"],
        "each once"
    );
    let (_, failed, _) = support::json_env(&p, &SMS_ENV, &["status", &id, "--failed"]);
    assert_eq!(failed["deliveries"], json!([]), "{failed}");
    // A retry with nothing failed sends nothing more.
    let (code, out, err) = p.run(&["retry", &id, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(gateway_log(&log).len(), 3);
    audit_is_whole(&p, &["send", "retry", "retry"]);
}

/// A real Kannel (fake SMSC) sending a two-part SMS to each recipient and
/// `serve` receiving Kannel's report for every part: each delivery ends
/// `delivered` (the ledger counts the parts' reports, SPEC §8.2).
pub fn kannel_reports_of_every_part_settle_a_two_part_sms_delivered(backend: &Backend) {
    let k = kannel::Kannel::start(kannel::Route::Fake);
    let p = messaggio_project(
        &format!(
            r#"
[channels.sms]
transport = "kannel"
url = "{url}"
username = "{user}"
password = "{password}"
sender = "ComuneML"
rate_per_second = 200
max_segments = 3
dlr_url = "__SERVE__/sms/dlr"
[serve]
listen = "127.0.0.1:0"
dlr_token = "{token}"
"#,
            url = k.sendsms_url(),
            user = kannel::USER,
            password = kannel::PASSWORD,
            token = support::TOKEN,
        ),
        backend,
    );
    p.contacts("cittadini.csv", &support::phones("+39333", 3));
    let _serve = support::Serve::start(&p, &[]);
    let text = format!("{} fine del messaggio.", "A".repeat(170));
    let (code, doc, err) = p.json(&[
        "send",
        "messaggio",
        "--var",
        &format!("testo={text}"),
        "--all",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}\n{doc}");
    let id = id_of(&doc);
    kannel::wait_until(Duration::from_secs(30), "three messages", || {
        k.received().len() >= 3
    });
    let mut to: Vec<String> = k.received().into_iter().map(|(to, _)| to).collect();
    to.sort();
    assert_eq!(to, ["+393330000001", "+393330000002", "+393330000003"]);
    assert!(
        k.received().iter().all(|(_, t)| *t == text),
        "{:?}",
        k.received()
    );
    assert_eq!(k.raw_parts().len(), 6, "two parts each");
    support::wait_for_counts(&p, &[], "3 delivered", |c| c["delivered"] == 3);
    for d in deliveries(&p, &id) {
        assert_eq!(d["state"], "delivered", "{d}");
    }
    audit_is_whole(&p, &["serve", "send"]);
}
// ---------------------------------------------------------------------
// `serve`: delivery reports and health
// ---------------------------------------------------------------------

/// GET `path` with extra header lines (each ending in CRLF).
pub fn http_get(port: u16, path: &str, headers: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n"
    )
    .expect("request");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("response");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

pub fn serve_records_delivery_reports_and_answers_health(backend: &Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("gateway.jsonl");
    let p = messaggio_project(&form_config(), backend);
    // 2 delivered, 1 invalid number, 1 undeliverable, 1 transient then
    // delivered (tests/servers/sms_gateway.py).
    let mut rows = support::phones("+39333", 2);
    rows.extend(support::phones("+39339", 1));
    rows.extend(support::phones("+39338", 1));
    rows.extend(support::phones("+39336", 1));
    p.contacts("cittadini.csv", &rows);
    let serve = support::Serve::start(&p, &SMS_ENV);
    assert_eq!(
        http_get(serve.port, "/healthz", ""),
        (200, "ok\n".to_owned())
    );
    let callback = format!(
        "http://127.0.0.1:{}/sms/report?token={}",
        serve.port,
        support::TOKEN
    );
    let gw = form_gateway(&log, Some(&callback));
    point_at_gateway(&p, &format!("http://127.0.0.1:{}", gw.port));

    let send = [
        "send",
        "messaggio",
        "--var",
        "testo=Prova di allerta",
        "--all",
        "--yes",
    ];
    let (code, doc, err) = support::json_env(&p, &SMS_ENV, &send);
    assert_eq!(code, 3, "the invalid number fails at once: {err}\n{doc}");
    let id = id_of(&doc);
    assert_eq!(
        gateway_log(&log).len(),
        4,
        "the invalid number is refused, the transient retried"
    );
    support::wait_for_counts(&p, &SMS_ENV, "3 delivered, 2 failed", |c| {
        c["delivered"] == 3 && c["failed"] == 2
    });
    let (_, failed, _) = support::json_env(&p, &SMS_ENV, &["status", &id, "--failed"]);
    let errors: Vec<String> = failed["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| format!("{} {}", d["address"], d["last_error"]))
        .collect();
    assert_eq!(errors.len(), 2, "{failed}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("+39339") && e.contains("ERR 21 invalid number")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("+39338") && e.contains("UNDELIV")),
        "{errors:?}"
    );
    // Delivered ones carry the provider's id from "OK id=…".
    let delivered: Vec<Value> = deliveries(&p, &id)
        .into_iter()
        .filter(|d| d["state"] == "delivered")
        .collect();
    assert_eq!(delivered.len(), 3);
    let provider_ids: HashSet<String> = gateway_log(&log)
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    for d in &delivered {
        let pid = d["provider_id"].as_str().unwrap_or_default();
        assert!(provider_ids.contains(pid), "{d} not in {provider_ids:?}");
    }
    assert_eq!(
        http_get(serve.port, "/healthz", ""),
        (200, "ok\n".to_owned())
    );
    // /metrics (with the token) counts the ledger's deliveries by state.
    assert_eq!(http_get(serve.port, "/metrics", "").0, 401);
    let (code, metrics) = http_get(
        serve.port,
        "/metrics",
        &format!("Authorization: Bearer {}\r\n", support::TOKEN),
    );
    assert_eq!(code, 200, "{metrics}");
    for line in [
        "allerta_deliveries{channel=\"sms\",state=\"delivered\"} 3",
        "allerta_deliveries{channel=\"sms\",state=\"failed\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    assert_eq!(serve.terminate(), Some(0));
    audit_is_whole(&p, &["serve", "send"]);
}
