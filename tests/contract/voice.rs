//! Voice calls (SPEC §14) against a local Twilio-compatible server.

use super::*;

// ---------------------------------------------------------------------
// Voice calls (a local Twilio-compatible server calling back `serve`)
// ---------------------------------------------------------------------

pub const TWILIO_SID: &str = "AC00000000000000000000000000000000";
pub const TWILIO_AUTH: &str = "twilio-auth-token-for-tests";
pub const VOICE_ENV: [(&str, &str); 2] = [
    ("TWILIO_AUTH_TOKEN", TWILIO_AUTH),
    ("ALLERTA_DLR_TOKEN", support::TOKEN),
];

/// The calls the Twilio server was asked to place, by number.
pub fn calls_to(log: &Path, number: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("log line"))
        .filter(|e| e["event"] == "call" && e["form"]["To"] == number)
        .count()
}

pub fn voice_state(p: &Project, id: &str, address: &str) -> Value {
    let (_, doc, _) = support::json_env(p, &VOICE_ENV, &["status", id, "--deliveries"]);
    doc["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .find(|d| d["channel"] == "voice" && d["address"] == address)
        .cloned()
        .unwrap_or_else(|| panic!("no voice delivery to {address}: {doc}"))
}

pub fn voice_calls_are_acknowledged_retried_when_busy_and_failed_when_invalid(backend: &Backend) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("twilio.jsonl");
    let mut c = Command::new("/usr/bin/python3");
    c.arg(repo.join("tests/servers/twilio_server.py"))
        .args([
            "--port",
            "0",
            "--sid",
            TWILIO_SID,
            "--token",
            TWILIO_AUTH,
            "--log",
        ])
        .arg(&log);
    let twilio = start_server(c);
    // The callback URL must be known before `serve` starts: a free port.
    let serve_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let example = std::fs::read_to_string(repo.join("examples/voice-twilio.toml"))
        .expect("example")
        .replace(
            "https://api.twilio.com",
            &format!("http://127.0.0.1:{}", twilio.port),
        )
        .replace(
            "https://allerta.comune.example.it",
            &format!("http://127.0.0.1:{serve_port}"),
        )
        .replace("127.0.0.1:8787", &format!("127.0.0.1:{serve_port}"))
        .replace("retry_after = \"5m\"", "retry_after = \"1s\"")
        .replace("rate_per_second = 1 ", "rate_per_second = 100 ");
    let p = Project::with_database(&example, backend);
    p.write(
        "contacts/voce.csv",
        "id,name,phone,landline,email,telegram_chat_id,zones,groups,language,channels\n\
         press,Anna,333 0000001,0551 000001,,,centro,cittadini,it,\n\
         listen,John,0552 000001,,,,centro,cittadini,en,\n\
         busy,Busy,0553 000001,,,,centro,cittadini,it,\n\
         bad,Bad,0559 000001,,,,centro,cittadini,it,\n",
    );
    let mut serve = Bot(p
        .cmd()
        .envs(VOICE_ENV)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start allerta serve"));
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serve.0.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("serve prints its address");
    assert!(
        line.contains(&serve_port.to_string()),
        "serve said {line:?}"
    );
    let (code, doc, err) = support::json_env(
        &p,
        &VOICE_ENV,
        &["send", "esercitazione", "--drill", "--all", "--yes"],
    );
    assert_eq!(code, 3, "the invalid number failed at once: {err}\n{doc}");
    let id = id_of(&doc);
    let bad = voice_state(&p, &id, "+390559000001");
    assert_eq!(bad["state"], "failed", "{bad}");
    assert!(
        bad["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("21211"),
        "{bad}"
    );

    // The timer's resume calls the busy number again (retry_after 1s).
    let start = Instant::now();
    loop {
        let busy = voice_state(&p, &id, "+390553000001");
        let press = voice_state(&p, &id, "+390551000001");
        let listen = voice_state(&p, &id, "+390552000001");
        if busy["state"] == "delivered"
            && press["state"] == "delivered"
            && listen["state"] == "delivered"
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "calls never completed: {busy}\n{press}\n{listen}"
        );
        std::thread::sleep(Duration::from_millis(1100));
        let (code, _, err) = support::json_env(&p, &VOICE_ENV, &["resume"]);
        assert!(code == 0 || code == 3, "resume: {code} {err}");
    }
    assert_eq!(
        calls_to(&log, "+390551000001"),
        1,
        "the landline, not the mobile"
    );
    assert_eq!(calls_to(&log, "+390553000001"), 2, "busy, then answered");
    assert_eq!(calls_to(&log, "+390559000001"), 0, "refused: never called");
    // 1 pressed is an acknowledgement; both who pressed it are counted.
    let (_, status, _) = support::json_env(&p, &VOICE_ENV, &["status", &id]);
    let voice = &status["channels"]["voice"];
    assert_eq!(voice["delivered"], 3, "{status}");
    assert_eq!(voice["failed"], 1, "{status}");
    assert_eq!(voice["acknowledged"], 2, "{status}");
    assert!(voice_state(&p, &id, "+390552000001")["acknowledged_at"].is_null());
    assert!(voice_state(&p, &id, "+390551000001")["acknowledged_at"].is_string());
    let sid = voice_state(&p, &id, "+390551000001")["provider_id"].clone();
    assert!(sid.as_str().is_some_and(|s| s.starts_with("CA")), "{sid}");
}
