//! The Telegram channel and bot against a local Bot API server
//! (tests/servers/telegram_server.py) that enforces Telegram's limits
//! (~30 messages/s overall, 1/s per chat) with real 429/403/400 bodies.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use common::control as http;
use common::{Project, Server, start_server};
use serde_json::{Value, json};

const TOKEN: &str = "123456:TEST-token";

fn telegram_server(extra: &[&str]) -> Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/telegram_server.py");
    let mut c = Command::new("/usr/bin/python3");
    c.arg(script)
        .args(["--port", "0", "--token", TOKEN])
        .args(extra);
    start_server(c)
}

fn sent(port: u16) -> Value {
    http(port, "GET", "/_test/sent", None)
}

/// The server's recorded calls of one Bot API method (any case).
fn calls(port: u16, method: &str) -> Vec<Value> {
    sent(port)["calls"]
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

fn successful_sends(port: u16) -> Vec<Value> {
    calls(port, "sendMessage")
        .into_iter()
        .filter(|c| c["status"] == 200)
        .collect()
}

fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn project(port: u16, extra: &str) -> Project {
    project_at_rate(port, 25.0, extra)
}

fn project_at_rate(port: u16, rate: f64, extra: &str) -> Project {
    let p = Project::new(&format!(
        r#"[channels.telegram]
transport = "bot-api"
api_url = "http://127.0.0.1:{port}"
token_file = "telegram.token"
rate_per_second = {rate}
{extra}
"#
    ));
    p.write("telegram.token", &format!("{TOKEN}\n"));
    p
}

/// `n` contacts with only a Telegram chat id (chat 100000001…).
fn telegram_contacts(p: &Project, n: usize) {
    let rows: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                "c{i},Persona {i},,,{},centro,cittadini,it,",
                100_000_000 + i
            )
        })
        .collect();
    p.contacts("telegram.csv", &rows);
}

fn meteo(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "send",
        "allerta-meteo",
        "--var",
        "livello=arancione",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ore 14 di oggi",
        "--zone",
        "centro",
        "--channel",
        "telegram",
        "--yes",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn run(p: &Project, args: &[String]) -> (i32, Value, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    p.json(&args)
}

fn add_subscriber(p: &Project, chat: &str, zones: &str) {
    // The database exists once any command opened the ledger.
    let (code, _, err) = p.run(&["subscribers", "list"]);
    assert_eq!(code, 0, "{err}");
    let conn = rusqlite::Connection::open(p.path("allerta.db")).expect("db");
    conn.execute(
        "INSERT INTO subscribers (chat_id, zones, language, active, created_at, updated_at)
         VALUES (?1, ?2, 'it', 1, 'now', 'now')",
        [chat, zones],
    )
    .expect("insert subscriber");
}

#[test]
fn paced_fan_out_to_150_chats_with_one_blocked_provokes_no_429() {
    let server = telegram_server(&[]);
    let p = project(server.port, "");
    telegram_contacts(&p, 149);
    add_subscriber(&p, "555000111", "centro");
    http(
        server.port,
        "POST",
        "/_test/config",
        Some(&json!({ "blocked": ["555000111"] })),
    );

    let start = Instant::now();
    let (code, doc, err) = run(&p, &meteo(&[]));
    let elapsed = start.elapsed();

    assert_eq!(code, 3, "one delivery failed: exit 3\n{err}");
    let t = &doc["channels"]["telegram"];
    assert_eq!(t["total"], 150, "{doc}");
    assert_eq!(t["sent"], 149, "{doc}");
    assert_eq!(t["failed"], 1, "{doc}");
    let state = sent(server.port);
    assert_eq!(state["rate_limited"], 0, "the sender provoked 429s");
    assert_eq!(successful_sends(server.port).len(), 149);
    assert_eq!(
        calls(server.port, "sendMessage").len(),
        150,
        "the blocked chat is not retried"
    );
    assert_eq!(
        p.sql("SELECT active FROM subscribers WHERE chat_id = '555000111'"),
        ["0"],
        "the subscriber who blocked the bot is deactivated"
    );
    let stamp = &p.sql("SELECT updated_at FROM subscribers WHERE chat_id = '555000111'")[0];
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok()
            && stamp.len() == 20
            && stamp.ends_with('Z'),
        "deactivated like the bot's /stop, with its timestamp format (to the second, Z): {stamp}"
    );
    assert_eq!(
        p.sql("SELECT last_error FROM deliveries WHERE address = '555000111'")[0],
        "Telegram: Forbidden: bot was blocked by the user"
    );
    // 150 messages at 25/s: 149 intervals of 40 ms ≈ 6 s; generous upper
    // bound for a loaded machine.
    assert!(
        elapsed >= Duration::from_millis(5900),
        "faster than rate_per_second allows: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(40), "too slow: {elapsed:?}");
    let times: Vec<f64> = successful_sends(server.port)
        .iter()
        .map(|c| c["t"].as_f64().expect("t"))
        .collect();
    let span = times.last().expect("last") - times.first().expect("first");
    eprintln!("150 deliveries at 25/s: {elapsed:?} end to end, first to last send {span:.2} s");
    assert!(
        span >= 5.5,
        "messages arrived in a burst: {span:.2} s for 149"
    );
}

#[test]
fn unknown_chats_and_deactivated_users_fail_at_once() {
    let server = telegram_server(&[]);
    let p = project(server.port, "");
    telegram_contacts(&p, 2);
    add_subscriber(&p, "555000222", "centro");
    http(
        server.port,
        "POST",
        "/_test/config",
        Some(&json!({ "not_found": ["100000001"], "deactivated": ["555000222"] })),
    );
    let (code, doc, err) = run(&p, &meteo(&[]));
    assert_eq!(code, 3, "{err}");
    let t = &doc["channels"]["telegram"];
    assert_eq!(
        (t["sent"].as_u64(), t["failed"].as_u64()),
        (Some(1), Some(2)),
        "{doc}"
    );
    assert_eq!(
        p.sql("SELECT attempts || ' ' || last_error FROM deliveries WHERE state = 'failed' ORDER BY address"),
        [
            "1 Telegram: Bad Request: chat not found",
            "1 Telegram: Forbidden: user is deactivated"
        ],
        "permanent: no retry"
    );
    assert_eq!(
        p.sql("SELECT active FROM subscribers WHERE chat_id = '555000222'"),
        ["0"]
    );
}

#[test]
fn every_direct_message_has_an_ack_button_bound_to_its_delivery() {
    let server = telegram_server(&[]);
    let p = project(server.port, "");
    telegram_contacts(&p, 3);
    let (code, _, err) = run(&p, &meteo(&[]));
    assert_eq!(code, 0, "{err}");
    for call in successful_sends(server.port) {
        let params = &call["params"];
        assert_eq!(params["parse_mode"], "HTML");
        let chat = params["chat_id"].to_string();
        let button = &params["reply_markup"]["inline_keyboard"][0][0];
        assert_eq!(button["text"], "✅ Ricevuto");
        let (id, token) = p.sql(&format!(
            "SELECT id || ' ' || substr(token, 1, 16) FROM deliveries WHERE address = '{chat}'"
        ))[0]
            .split_once(' ')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .expect("row");
        assert_eq!(button["callback_data"], format!("ack:{id}:{token}"));
    }
}

#[test]
fn a_forced_429_is_waited_out_for_retry_after_then_retried() {
    let server = telegram_server(&[]);
    // 4/s: the next sends are not yet in flight when the 429 comes back.
    let p = project_at_rate(server.port, 4.0, "");
    telegram_contacts(&p, 3);
    http(
        server.port,
        "POST",
        "/_test/force",
        Some(&json!({ "chat_id": "*", "error_code": 429, "retry_after": 2, "times": 1 })),
    );
    let (code, doc, err) = run(&p, &meteo(&[]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["channels"]["telegram"]["sent"], 3);
    let all = calls(server.port, "sendMessage");
    assert_eq!(all.len(), 4, "one 429, then three sends");
    assert_eq!(all[0]["status"], 429);
    let limited_at = all[0]["t"].as_f64().expect("t");
    let chat = all[0]["params"]["chat_id"].clone();
    for call in &all[1..] {
        assert_eq!(call["status"], 200);
        let waited = call["t"].as_f64().expect("t") - limited_at;
        assert!(
            waited >= 1.95,
            "a send {waited:.2} s after a 429 with retry_after 2 s: {call}"
        );
    }
    assert_eq!(
        all[1..]
            .iter()
            .filter(|c| c["params"]["chat_id"] == chat)
            .count(),
        1,
        "the refused message is retried once"
    );
    for pair in all[1..].windows(2) {
        let gap = pair[1]["t"].as_f64().expect("t") - pair[0]["t"].as_f64().expect("t");
        assert!(
            gap >= 0.2,
            "sends left in a burst when the pause ended ({gap:.3} s apart at 4/s)"
        );
    }
    assert_eq!(
        p.sql(&format!(
            "SELECT attempts FROM deliveries WHERE address = '{chat}'"
        )),
        ["2"]
    );
    assert_eq!(sent(server.port)["rate_limited"], 0);
}

#[test]
fn the_broadcast_channel_gets_one_post_without_button_and_drills_skip_it() {
    let server = telegram_server(&[]);
    let p = project(server.port, r#"broadcast_chat = "@allerta_prova""#);
    telegram_contacts(&p, 2);
    let (code, _, err) = run(&p, &meteo(&[]));
    assert_eq!(code, 0, "{err}");
    let posts: Vec<Value> = successful_sends(server.port)
        .into_iter()
        .filter(|c| c["params"]["chat_id"] == "@allerta_prova")
        .collect();
    assert_eq!(posts.len(), 1, "one post to the public channel");
    assert!(
        posts[0]["params"].get("reply_markup").is_none(),
        "no ack button on the channel post"
    );
    assert_eq!(successful_sends(server.port).len(), 3);

    let (code, _, err) = run(
        &p,
        &[
            "send",
            "esercitazione",
            "--drill",
            "--zone",
            "centro",
            "--channel",
            "telegram",
            "--yes",
        ]
        .map(str::to_owned),
    );
    assert_eq!(code, 0, "{err}");
    let posts = successful_sends(server.port)
        .into_iter()
        .filter(|c| c["params"]["chat_id"] == "@allerta_prova")
        .count();
    assert_eq!(posts, 1, "a drill is not posted on the public channel");
}

#[test]
fn variables_are_html_escaped_and_telegram_accepts_the_text() {
    let server = telegram_server(&[]);
    let p = project(server.port, "");
    telegram_contacts(&p, 1);
    let mut args = meteo(&[]);
    let i = args
        .iter()
        .position(|a| a == "dalle=ore 14 di oggi")
        .expect("dalle");
    args[i] = "dalle=ore 14 <oggi> & R&D".into();
    let (code, _, err) = run(&p, &args);
    assert_eq!(code, 0, "the server refuses unescaped HTML: {err}");
    let sends = successful_sends(server.port);
    let text = sends[0]["params"]["text"].as_str().expect("text");
    assert!(text.contains("ore 14 &lt;oggi&gt; &amp; R&amp;D"), "{text}");
    assert!(text.contains("<b>"), "the template's own tags stay: {text}");
}

#[test]
fn a_text_over_4096_characters_is_refused_before_sending_and_by_templates_check() {
    let server = telegram_server(&[]);
    let p = project(server.port, "");
    telegram_contacts(&p, 1);
    let long = format!("dalle={}", "a".repeat(4100));
    let mut args = meteo(&[]);
    let i = args
        .iter()
        .position(|a| a == "dalle=ore 14 di oggi")
        .expect("dalle");
    args[i] = long;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = p.run(&args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("4096"), "{err}");
    assert!(calls(server.port, "sendMessage").is_empty());

    // templates check with a template whose example renders too long.
    let dir = p.path("mytemplates");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("lungo.toml"),
        format!(
            r#"title = "Lungo"
event = "Prova"
category = "Other"
severity = "Minor"
urgency = "Future"
certainty = "Possible"
[variables.testo]
description = "testo"
example = "{}"
[it]
headline = "Prova"
telegram = "{{{{ testo }}}}"
"#,
            "b".repeat(5000)
        ),
    )
    .expect("template");
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    let config = config
        .lines()
        .map(|l| {
            if l.starts_with("templates_dir") {
                format!("templates_dir = \"{}\"", dir.display())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(p.path("allerta.toml"), config).expect("config");
    let (code, out, err) = p.run(&["templates", "check"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(format!("{out}{err}").contains("4096"), "{out}{err}");
}

#[test]
fn a_rejected_token_stops_the_channel_instead_of_failing_every_chat() {
    let server = telegram_server(&[]);
    let p = project(server.port, "");
    p.write("telegram.token", "999:WRONG\n");
    telegram_contacts(&p, 100);
    let (code, doc, err) = run(&p, &meteo(&[]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("stopped"), "{err}");
    let t = &doc["channels"]["telegram"];
    assert_eq!(t["failed"], 0, "nobody's delivery is failed by a bad token");
    assert_eq!(t["pending"], 100, "all kept for `resume`");
    let tried = calls(server.port, "sendMessage").len();
    assert!(tried <= 40, "kept sending after a 401: {tried}");
}

/// `allerta bot` as a child process; SIGTERM on drop if still running.
struct BotProcess(Child);

impl BotProcess {
    fn start(p: &Project) -> Self {
        let child = Command::cargo_bin("allerta")
            .expect("binary")
            .current_dir(p.dir.path())
            .arg("--config")
            .arg(p.path("allerta.toml"))
            .arg("bot")
            .env("USER", "test-officer")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bot");
        Self(child)
    }

    fn terminate(&mut self) -> (Option<i32>, Duration) {
        let start = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.0.try_wait().expect("wait") {
                return (s.code(), start.elapsed());
            }
            assert!(Instant::now() < deadline, "the bot did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn enqueue(port: u16, update: Value) {
    http(port, "POST", "/_test/updates", Some(&update));
}

/// Waits for the `n`-th successful sendMessage to `chat` (1-based).
fn nth_reply(port: u16, chat: i64, n: usize) -> Value {
    wait_for("a bot reply", Duration::from_secs(15), || {
        successful_sends(port)
            .into_iter()
            .filter(|c| c["params"]["chat_id"] == chat)
            .nth(n - 1)
    })
}

fn callback_answers(port: u16) -> Vec<Value> {
    calls(port, "answerCallbackQuery")
}

#[test]
fn the_bot_subscribes_records_acknowledgements_stops_and_erases() {
    let server = telegram_server(&[]);
    let port = server.port;
    let p = project(port, "admin_chats = [900]");
    let mut bot = BotProcess::start(&p);
    wait_for("the bot to poll", Duration::from_secs(15), || {
        (!calls(port, "getUpdates").is_empty()).then_some(())
    });
    assert!(!calls(port, "getMe").is_empty());
    assert!(!calls(port, "deleteWebhook").is_empty());

    // /start: welcome, privacy line, zone buttons; subscriber stored.
    enqueue(
        port,
        json!({ "message": { "chat_id": 42, "text": "/start" } }),
    );
    let welcome = nth_reply(port, 42, 1);
    let text = welcome["params"]["text"].as_str().expect("text");
    assert!(text.contains("Benvenuto"), "{text}");
    assert!(text.contains("Privacy"), "{text}");
    let keyboard = welcome["params"]["reply_markup"]["inline_keyboard"].to_string();
    for data in ["zone:centro", "zone:fibbiana", "zones:done"] {
        assert!(keyboard.contains(data), "{keyboard}");
    }
    assert_eq!(
        p.sql("SELECT active || '|' || zones FROM subscribers WHERE chat_id = '42'"),
        ["1|"]
    );

    // Choose Fibbiana, then "Fatto".
    let welcome_id = welcome["message_id"].as_i64().expect("message id");
    enqueue(
        port,
        json!({ "callback": { "chat_id": 42, "data": "zone:fibbiana", "message_id": welcome_id } }),
    );
    wait_for("the zone to be stored", Duration::from_secs(15), || {
        (p.sql("SELECT zones FROM subscribers WHERE chat_id = '42'") == ["fibbiana"]).then_some(())
    });
    let edited = wait_for("the buttons to be updated", Duration::from_secs(15), || {
        calls(port, "editMessageReplyMarkup").into_iter().next()
    });
    assert!(
        edited["params"]["reply_markup"]
            .to_string()
            .contains("✅ Fibbiana"),
        "{edited}"
    );
    enqueue(
        port,
        json!({ "callback": { "chat_id": 42, "data": "zones:done", "message_id": welcome_id } }),
    );
    let done = wait_for("the summary", Duration::from_secs(15), || {
        calls(port, "editMessageText").into_iter().next()
    });
    assert!(
        done["params"]["text"]
            .as_str()
            .expect("text")
            .contains("Fibbiana"),
        "{done}"
    );

    // An alert for Fibbiana reaches the subscriber, with its ack button.
    // (`send` and the bot pace chats separately: leave chat 42 its second.)
    std::thread::sleep(Duration::from_millis(1100));
    let (code, _, err) = p.json(&[
        "send",
        "allerta-meteo",
        "--var",
        "livello=giallo",
        "--var",
        "rischio=vento",
        "--var",
        "dalle=ore 20",
        "--zone",
        "fibbiana",
        "--channel",
        "telegram",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    let alert = nth_reply(port, 42, 2);
    let ack = alert["params"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        .as_str()
        .expect("ack button")
        .to_owned();
    let alert_message_id = p.sql("SELECT provider_id FROM deliveries WHERE address = '42'")[0]
        .parse::<i64>()
        .expect("message id");

    // A forged press (right delivery, wrong token) is refused.
    let forged = format!("{}0000000000000000", &ack[..ack.rfind(':').expect(":") + 1]);
    enqueue(
        port,
        json!({ "callback": { "chat_id": 42, "data": forged, "message_id": alert_message_id } }),
    );
    // The same button pressed from another chat is refused too.
    enqueue(
        port,
        json!({ "callback": { "chat_id": 43, "data": ack, "message_id": alert_message_id } }),
    );
    enqueue(
        port,
        json!({ "callback": { "chat_id": 42, "data": ack, "message_id": alert_message_id } }),
    );
    let answers = wait_for("three callback answers", Duration::from_secs(15), || {
        let a = callback_answers(port);
        (a.len() >= 5).then_some(a)
    });
    let texts: Vec<&str> = answers[2..]
        .iter()
        .map(|a| a["params"]["text"].as_str().unwrap_or(""))
        .collect();
    assert!(texts[0].contains("non valida"), "{texts:?}");
    assert!(texts[1].contains("non valida"), "{texts:?}");
    assert!(texts[2].contains("confermata"), "{texts:?}");
    let (_, status, _) = p.json(&["status"]);
    assert_eq!(
        status["channels"]["telegram"]["acknowledged"], 1,
        "{status}"
    );
    // `send` and the bot pace chats separately: leave chat 42 its second.
    std::thread::sleep(Duration::from_millis(1100));

    // /stato, /ultima (operators only), /stop.
    enqueue(
        port,
        json!({ "message": { "chat_id": 42, "text": "/stato" } }),
    );
    let stato = nth_reply(port, 42, 3);
    let stato = stato["params"]["text"].as_str().expect("text");
    assert!(
        stato.contains("attiva") && stato.contains("Fibbiana"),
        "{stato}"
    );
    enqueue(
        port,
        json!({ "message": { "chat_id": 42, "text": "/ultima" } }),
    );
    assert!(
        nth_reply(port, 42, 4)["params"]["text"]
            .as_str()
            .expect("text")
            .contains("riservato")
    );
    enqueue(
        port,
        json!({ "message": { "chat_id": 900, "text": "/ultima" } }),
    );
    let alert_id = status["alert"]["id"].as_str().expect("id");
    let ultima = nth_reply(port, 900, 1);
    let ultima = ultima["params"]["text"].as_str().expect("text");
    assert!(
        ultima.contains(alert_id) && ultima.contains("1 confermati"),
        "{ultima}"
    );
    enqueue(
        port,
        json!({ "message": { "chat_id": 42, "text": "/stop" } }),
    );
    nth_reply(port, 42, 5);
    assert_eq!(
        p.sql("SELECT active FROM subscribers WHERE chat_id = '42'"),
        ["0"]
    );

    // /cancellami: the row is gone, the delivery kept but anonymised.
    enqueue(
        port,
        json!({ "message": { "chat_id": 42, "text": "/cancellami" } }),
    );
    let erased = nth_reply(port, 42, 6);
    assert!(
        erased["params"]["text"]
            .as_str()
            .expect("text")
            .contains("codice anonimo"),
        "{erased}"
    );
    assert!(p.sql("SELECT chat_id FROM subscribers").is_empty());
    assert_eq!(
        p.sql("SELECT COUNT(*) FROM deliveries WHERE address = '42' OR recipient LIKE '%42%'"),
        ["0"]
    );
    assert_eq!(
        p.sql("SELECT COUNT(*) FROM deliveries WHERE address LIKE 'erased:%' AND acknowledged_at IS NOT NULL"),
        ["1"]
    );

    // Another citizen: /lingua → English, then blocks the bot.
    enqueue(
        port,
        json!({ "message": { "chat_id": 77, "text": "/start" } }),
    );
    nth_reply(port, 77, 1);
    enqueue(
        port,
        json!({ "message": { "chat_id": 77, "text": "/lingua" } }),
    );
    let choice = nth_reply(port, 77, 2);
    assert!(
        choice["params"]["reply_markup"]
            .to_string()
            .contains("lang:en")
    );
    let choice_id = choice["message_id"].as_i64().expect("message id");
    enqueue(
        port,
        json!({ "callback": { "chat_id": 77, "data": "lang:en", "message_id": choice_id } }),
    );
    wait_for("the language to be stored", Duration::from_secs(15), || {
        (p.sql("SELECT language FROM subscribers WHERE chat_id = '77'") == ["en"]).then_some(())
    });
    enqueue(
        port,
        json!({ "message": { "chat_id": 77, "text": "/stato" } }),
    );
    let stato = nth_reply(port, 77, 3);
    assert!(
        stato["params"]["text"]
            .as_str()
            .expect("text")
            .contains("Subscription"),
        "{stato}"
    );
    enqueue(
        port,
        json!({ "my_chat_member": { "chat_id": 77, "status": "kicked" } }),
    );
    wait_for(
        "the blocked subscriber to be deactivated",
        Duration::from_secs(15),
        || (p.sql("SELECT active FROM subscribers WHERE chat_id = '77'") == ["0"]).then_some(()),
    );

    // SIGTERM: clean exit, and the handled updates are confirmed.
    let (code, took) = bot.terminate();
    eprintln!("the bot stopped {took:?} after SIGTERM");
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        sent(port)["pending_updates"],
        0,
        "handled updates were confirmed"
    );
    let limited: Vec<Value> = sent(port)["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| c["status"] == 429)
        .cloned()
        .collect();
    assert!(
        limited.is_empty(),
        "the bot provoked 429s: {limited:?}\n{}",
        sent(port)
    );
}

#[test]
fn the_bot_refuses_a_bad_token() {
    let server = telegram_server(&[]);
    let p = project(server.port, "");
    p.write("telegram.token", "999:WRONG\n");
    let (code, _, err) = p.run(&["bot"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("token"), "{err}");
}

#[test]
fn subscribers_list_export_and_forget() {
    let server = telegram_server(&[]);
    let p = project(server.port, "");
    add_subscriber(&p, "4242", "centro;fibbiana");
    add_subscriber(&p, "4343", "centro");
    let (code, doc, err) = p.json(&["subscribers", "list"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["subscribers"].as_array().expect("list").len(), 2);
    assert_eq!(
        doc["subscribers"][0]["zones"],
        json!(["centro", "fibbiana"])
    );

    let (code, _, err) = run(&p, &meteo(&[]));
    assert_eq!(code, 0, "{err}");
    let (code, doc, err) = p.json(&["subscribers", "export", "--chat", "4242"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["subscriber"]["chat_id"], "4242");
    assert_eq!(doc["deliveries"][0]["state"], "sent");

    let (code, doc, err) = p.json(&["subscribers", "forget", "4242"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["subscriber"], true);
    assert_eq!(doc["deliveries_anonymised"], 1);
    assert!(
        p.sql("SELECT chat_id FROM subscribers WHERE chat_id = '4242'")
            .is_empty()
    );
    assert_eq!(
        p.sql("SELECT COUNT(*) FROM audit WHERE detail LIKE '%4242%'"),
        ["0"],
        "the audit trail does not keep the erased chat id"
    );
    let (code, _, _) = p.run(&["subscribers", "forget", "4242"]);
    assert_eq!(code, 2, "nothing left to erase");
}

/// Waits until the bot polls the test server.
fn bot_polling(port: u16) {
    wait_for("the bot to poll", Duration::from_secs(15), || {
        (!calls(port, "getUpdates").is_empty()).then_some(())
    });
}

fn replies_to(port: u16, chat: i64) -> Vec<String> {
    successful_sends(port)
        .into_iter()
        .filter(|c| c["params"]["chat_id"] == chat)
        .map(|c| c["params"]["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn ultima_is_authorised_by_the_sending_user_not_by_the_chat() {
    let server = telegram_server(&[]);
    let port = server.port;
    // The operator (user 900) listed; their group -100900 is not a grant.
    let p = project(port, "admin_chats = [900, -100900]");
    let _bot = BotProcess::start(&p);
    bot_polling(port);

    // Another member of the operators' group asks: refused.
    enqueue(
        port,
        json!({ "message": { "chat_id": -100900, "from_id": 555, "text": "/ultima" } }),
    );
    let reply = nth_reply(port, -100900, 1);
    assert!(
        reply["params"]["text"]
            .as_str()
            .expect("text")
            .contains("riservato"),
        "{reply}"
    );
    // The operator in the same group: answered.
    enqueue(
        port,
        json!({ "message": { "chat_id": -100900, "from_id": 900, "text": "/ultima" } }),
    );
    let reply = nth_reply(port, -100900, 2);
    assert!(
        !reply["params"]["text"]
            .as_str()
            .expect("text")
            .contains("riservato"),
        "{reply}"
    );
}

#[test]
fn one_user_flooding_the_bot_does_not_stall_it_for_everyone() {
    let server = telegram_server(&[]);
    let port = server.port;
    let p = project(port, "");
    let _bot = BotProcess::start(&p);
    bot_polling(port);

    // 60 messages from one user, then one from someone else, all in the
    // queue before the bot's next poll.
    for _ in 0..60 {
        enqueue(
            port,
            json!({ "message": { "chat_id": 601, "text": "/stato" } }),
        );
    }
    let asked = Instant::now();
    enqueue(
        port,
        json!({ "message": { "chat_id": 602, "text": "/stato" } }),
    );

    // Telegram's 1 message/s per chat would make the flooder's replies
    // take a minute; the other user is answered meanwhile.
    nth_reply(port, 602, 1);
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the second user waited {:?}",
        asked.elapsed()
    );
    std::thread::sleep(Duration::from_secs(3));
    let flooder = replies_to(port, 601).len();
    assert!(
        (1..=5).contains(&flooder),
        "the flooder got {flooder} replies so far"
    );
}
