//! The Telegram bot and the escalation ladder against a local Bot API.

use super::*;

// ---------------------------------------------------------------------
// Bot subscribers (local Telegram Bot API server)
// ---------------------------------------------------------------------

pub const TG_TOKEN: &str = "123456:TEST-token";

pub fn telegram_server() -> Server {
    let mut c = Command::new("/usr/bin/python3");
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/servers/telegram_server.py"
    ))
    .args(["--port", "0", "--token", TG_TOKEN]);
    start_server(c)
}

/// One request to the Telegram test server's control endpoints.
pub fn tg_http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    common::control(port, method, path, body)
}

pub fn tg_calls(port: u16, method: &str) -> Vec<Value> {
    tg_http(port, "GET", "/_test/sent", None)["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| {
            c["method"]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case(method))
        })
        .cloned()
        .collect()
}

/// The `n`-th successful sendMessage to `chat` (1-based), waited for.
pub fn nth_reply(port: u16, chat: i64, n: usize) -> Value {
    wait_for("a bot reply", Duration::from_secs(15), || {
        tg_calls(port, "sendMessage")
            .into_iter()
            .filter(|c| c["status"] == 200 && c["params"]["chat_id"] == chat)
            .nth(n - 1)
    })
}

pub fn enqueue(port: u16, update: Value) {
    tg_http(port, "POST", "/_test/updates", Some(&update));
}

/// A long-running `allerta` (`bot`, `serve`), killed on drop if still
/// running.
pub struct Bot(pub Child);

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A send's Telegram deliveries (no entry at all when nobody was planned).
pub fn telegram_total(doc: &Value) -> u64 {
    doc["channels"]["telegram"]["total"].as_u64().unwrap_or(0)
}

pub fn subscribers(p: &Project) -> Vec<Value> {
    ok_json(p, &["subscribers", "list"])["subscribers"]
        .as_array()
        .expect("subscribers")
        .clone()
}

pub fn bot_subscribers_receive_alerts_stop_and_are_forgotten(backend: &Backend) {
    let server = telegram_server();
    let port = server.port;
    let p = Project::with_database(
        &format!(
            "[channels.telegram]\ntransport = \"bot-api\"\napi_url = \"http://127.0.0.1:{port}\"\ntoken_file = \"telegram.token\"\nrate_per_second = 25\n"
        ),
        backend,
    );
    p.write("telegram.token", &format!("{TG_TOKEN}\n"));
    let mut bot = start_bot(&p, port);

    // /start, choose Fibbiana, "Fatto".
    enqueue(
        port,
        json!({ "message": { "chat_id": 42, "text": "/start" } }),
    );
    let welcome = nth_reply(port, 42, 1);
    assert!(
        welcome["params"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Benvenuto"),
        "{welcome}"
    );
    let welcome_id = welcome["message_id"].as_i64().expect("message id");
    enqueue(
        port,
        json!({ "callback": { "chat_id": 42, "data": "zone:fibbiana", "message_id": welcome_id } }),
    );
    wait_for("the zone to be stored", Duration::from_secs(15), || {
        subscribers(&p)
            .iter()
            .any(|s| s["chat_id"] == "42" && s["zones"] == json!(["fibbiana"]))
            .then_some(())
    });
    enqueue(
        port,
        json!({ "callback": { "chat_id": 42, "data": "zones:done", "message_id": welcome_id } }),
    );
    // The subscriber counts in the coverage of Fibbiana (SPEC §12).
    let coverage = ok_json(&p, &["contacts", "coverage", "--zone", "fibbiana"]);
    assert_eq!(
        coverage["zones"]["fibbiana"],
        json!({"total": 1, "channels": {"telegram": 1}, "none": 0}),
        "{coverage}"
    );
    wait_for("the summary", Duration::from_secs(15), || {
        tg_calls(port, "editMessageText").into_iter().next()
    });

    // An alert for Fibbiana reaches the subscriber; one for centro does not.
    // (`send` and the bot pace chats separately: leave chat 42 its second.)
    std::thread::sleep(Duration::from_millis(1100));
    let fibbiana = ok_json(
        &p,
        &meteo_send(&["--zone", "fibbiana", "--channel", "telegram", "--yes"]),
    );
    assert_eq!(fibbiana["channels"]["telegram"]["sent"], 1, "{fibbiana}");
    let alert = nth_reply(port, 42, 2);
    assert!(
        alert["params"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("ARANCIONE"),
        "{alert}"
    );
    // Its ack button is recorded in the ledger.
    let ack = alert["params"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        .as_str()
        .expect("ack button")
        .to_owned();
    let message_id = alert["message_id"].as_i64().expect("message id");
    enqueue(
        port,
        json!({ "callback": { "chat_id": 42, "data": ack, "message_id": message_id } }),
    );
    let fib_id = id_of(&fibbiana);
    wait_for("the acknowledgement", Duration::from_secs(15), || {
        (ok_json(&p, &["status", &fib_id])["channels"]["telegram"]["acknowledged"] == 1)
            .then_some(())
    });
    let centro = ok_json(
        &p,
        &meteo_send(&["--zone", "centro", "--channel", "telegram", "--yes"]),
    );
    assert_eq!(telegram_total(&centro), 0, "{centro}");

    // /stop: inactive, and the next alert for Fibbiana does not reach it.
    std::thread::sleep(Duration::from_millis(1100));
    enqueue(
        port,
        json!({ "message": { "chat_id": 42, "text": "/stop" } }),
    );
    nth_reply(port, 42, 3);
    wait_for(
        "the subscriber to be inactive",
        Duration::from_secs(15),
        || {
            subscribers(&p)
                .iter()
                .any(|s| s["chat_id"] == "42" && s["active"] == false)
                .then_some(())
        },
    );
    let after_stop = ok_json(
        &p,
        &meteo_send(&["--zone", "fibbiana", "--channel", "telegram", "--yes"]),
    );
    assert_eq!(telegram_total(&after_stop), 0, "{after_stop}");
    assert_eq!(
        tg_calls(port, "sendMessage")
            .iter()
            .filter(|c| c["params"]["chat_id"] == 42)
            .count(),
        3,
        "welcome, the Fibbiana alert, the /stop reply: nothing else"
    );

    // Export (GDPR): the subscription and its deliveries.
    let export = ok_json(&p, &["subscribers", "export", "--chat", "42"]);
    assert_eq!(export["subscriber"]["chat_id"], "42", "{export}");
    assert_eq!(
        export["deliveries"].as_array().map(Vec::len),
        Some(1),
        "{export}"
    );
    // Forget (GDPR): the subscriber is gone, its delivery anonymised.
    let forgot = ok_json(&p, &["subscribers", "forget", "42"]);
    assert_eq!(forgot["subscriber"], true, "{forgot}");
    assert_eq!(forgot["deliveries_anonymised"], 1, "{forgot}");
    assert!(subscribers(&p).is_empty());
    let (code, _, _) = p.run(&["subscribers", "forget", "42"]);
    assert_eq!(code, 2, "nothing left to erase");
    let kept = deliveries(&p, &fib_id);
    assert_eq!(kept.len(), 1);
    assert_ne!(kept[0]["address"], "42", "{kept:?}");
    assert!(
        !kept[0]["acknowledged_at"].is_null(),
        "the acknowledgement is kept: {kept:?}"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &bot.0.id().to_string()])
        .status();
    let status = wait_for("the bot to stop", Duration::from_secs(20), || {
        bot.0.try_wait().expect("wait")
    });
    assert_eq!(status.code(), Some(0));
    audit_is_whole(&p, &["send", "send", "send", "subscribers forget"]);
}
// ---------------------------------------------------------------------
// The escalation ladder (acknowledged on Telegram, escalated by email)
// ---------------------------------------------------------------------

pub fn start_bot(p: &Project, port: u16) -> Bot {
    let bot = Bot(p
        .cmd()
        .arg("bot")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the bot"));
    wait_for("the bot to poll", Duration::from_secs(15), || {
        (!tg_calls(port, "getUpdates").is_empty()).then_some(())
    });
    bot
}

pub fn an_escalation_step_reaches_only_who_did_not_acknowledge(backend: &Backend) {
    let server = telegram_server();
    let port = server.port;
    let p = Project::with_database(
        &format!(
            r#"[channels.telegram]
transport = "bot-api"
api_url = "http://127.0.0.1:{port}"
token_file = "telegram.token"
rate_per_second = 25
[channels.email]
transport = "outbox"
from = "Protezione Civile <pc@comune.example.it>"
unsubscribe_url = "https://comune.example.it/cancellami?t={{token}}"

[escalation]
steps = [{{ after = "10s", channel = "email" }}]
"#
        ),
        backend,
    );
    p.write("telegram.token", &format!("{TG_TOKEN}\n"));
    p.contacts("c.csv", &synthetic_rows(3, "example.org"));
    let _bot = start_bot(&p, port);

    // The first round: Telegram only (the step's channel waits).
    let sent = ok_json(&p, &meteo_send(&["--all", "--yes"]));
    let id = id_of(&sent);
    assert_eq!(sent["channels"]["telegram"]["sent"], 3, "{sent}");
    assert!(p.outbox("email").is_empty(), "the step is not due yet");
    let escalation = &sent["escalation"];
    assert_eq!(escalation["not_acknowledged"], 3, "{sent}");
    assert_eq!(escalation["next"]["channel"], "email", "{sent}");

    // c1 acknowledges with the button of its message.
    let message = nth_reply(port, 100_000_001, 1);
    let ack = message["params"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        .as_str()
        .expect("ack button")
        .to_owned();
    enqueue(
        port,
        json!({ "callback": { "chat_id": 100_000_001, "data": ack, "message_id": message["message_id"] } }),
    );
    wait_for("the acknowledgement", Duration::from_secs(15), || {
        (ok_json(&p, &["status", &id])["escalation"]["acknowledged"] == 1).then_some(())
    });
    // The timer before the step is due sends nothing.
    let (code, _, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{err}");
    assert!(p.outbox("email").is_empty(), "the step is not due yet");

    // Once due, the timer sends the step to the two who did not confirm.
    let at = ok_json(&p, &["status", &id])["escalation"]["next"]["at"]
        .as_str()
        .expect("next step time")
        .to_owned();
    let at = chrono::DateTime::parse_from_rfc3339(&at).expect("RFC 3339");
    let wait = (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    std::thread::sleep(wait + Duration::from_millis(300));
    let (code, _, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{err}");
    let mut to = outbox_to(&p, "email", &id);
    to.sort();
    assert_eq!(to, ["user2@example.org", "user3@example.org"]);
    let status = ok_json(&p, &["status", &id]);
    let email = &status["channels"]["email"];
    assert_eq!(
        (email["sent"].clone(), email["skipped"].clone()),
        (json!(2), json!(1)),
        "{status}"
    );
    assert_eq!(status["escalation"]["next"], Value::Null, "{status}");
    assert_eq!(status["escalation"]["acknowledged"], 1, "{status}");
    // Nothing more for a later timer.
    assert_eq!(p.run(&["resume"]).0, 0);
    assert_eq!(p.outbox("email").len(), 2);
    audit_is_whole(&p, &["send", "resume"]);
}
