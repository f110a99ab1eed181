//! Voice calls and the escalation ladder (SPEC §14) with the shipped
//! example configuration (examples/voice-twilio.toml), against a local
//! server that speaks Twilio's REST and callback formats and, like Twilio,
//! makes the callbacks to the real `allerta serve` (tests/servers/
//! twilio_server.py: TwiML fetched, key pressed, final status posted, all
//! signed with X-Twilio-Signature).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Project, Server, start_server};

const SID: &str = "AC00000000000000000000000000000000";
const AUTH: &str = "twilio-auth-token-for-tests";
const DLR: &str = "dlr-secret-42-sixteen";
const ENVS: [(&str, &str); 2] = [("TWILIO_AUTH_TOKEN", AUTH), ("ALLERTA_DLR_TOKEN", DLR)];

/// Every call's text is the `testo` variable, in Italian and English.
const TEMPLATE: &str = r#"
title = "Chiamata"
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
voice = "{{ testo }}"
[en]
voice = "English: {{ testo }}"
"#;

const HEADER: &str = "id,name,phone,landline,email,telegram_chat_id,zones,groups,language,channels";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A project, the Twilio server and `allerta serve`, wired together.
struct Voice {
    p: Project,
    twilio: Server,
    log: PathBuf,
    serve: Option<Child>,
    serve_port: u16,
}

impl Drop for Voice {
    fn drop(&mut self) {
        if let Some(c) = &mut self.serve {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Voice {
    /// `extra`: more config (e.g. `[escalation]`); `rows`: contact rows
    /// under [`HEADER`].
    fn start(extra: &str, rows: &[&str]) -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("twilio.jsonl");
        let mut c = Command::new("/usr/bin/python3");
        c.arg(repo.join("tests/servers/twilio_server.py"))
            .args(["--port", "0", "--sid", SID, "--token", AUTH, "--log"])
            .arg(&log);
        let twilio = start_server(c);
        let serve_port = free_port();
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
        let p = Project::new(&format!(
            "{example}\n[channels.sms]\ntransport = \"outbox\"\n{extra}"
        ));
        let config = std::fs::read_to_string(p.path("allerta.toml"))
            .expect("config")
            .replace(
                &format!("templates_dir = \"{}\"", repo.join("templates").display()),
                "templates_dir = \"templates\"",
            );
        p.write("allerta.toml", &config);
        p.write("templates/chiamata.toml", TEMPLATE);
        p.write(
            "templates/cessata-allerta.toml",
            &std::fs::read_to_string(repo.join("templates/cessata-allerta.toml")).expect("t"),
        );
        let mut text = format!("{HEADER}\n");
        for r in rows {
            text.push_str(r);
            text.push('\n');
        }
        p.write("contacts/voce.csv", &text);
        // Keep the temp dir of the log alive with the project.
        std::mem::forget(dir);
        let mut v = Self {
            p,
            twilio,
            log,
            serve: None,
            serve_port,
        };
        v.start_serve();
        v
    }

    fn start_serve(&mut self) {
        let mut child = self
            .cmd()
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.serve_port),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start allerta serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("serve prints its address");
        assert!(
            line.contains(&self.serve_port.to_string()),
            "serve said {line:?}"
        );
        self.serve = Some(child);
    }

    fn cmd(&self) -> Command {
        let mut c = self.p.cmd();
        c.envs(ENVS);
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().expect("run allerta");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (_, out, err) = self.run(&all);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {out}\nstderr: {err}"))
    }

    /// `send chiamata --var testo=TEXT --all --yes` + `extra`: (code, alert id).
    fn send(&self, text: &str, extra: &[&str]) -> (i32, String) {
        let var = format!("testo={text}");
        let mut args = vec![
            "--json", "send", "chiamata", "--var", &var, "--all", "--yes",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = self.run(&args);
        let doc: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("send: not JSON ({e}): {out}\nstderr: {err}"));
        (
            code,
            doc["alert"]["id"].as_str().expect("alert id").to_owned(),
        )
    }

    /// The voice deliveries of an alert, by address.
    fn deliveries(&self, id: &str) -> Vec<serde_json::Value> {
        self.json(&["status", id, "--deliveries"])["deliveries"]
            .as_array()
            .expect("deliveries")
            .clone()
    }

    fn delivery(&self, id: &str, channel: &str, address: &str) -> serde_json::Value {
        self.deliveries(id)
            .into_iter()
            .find(|d| d["channel"] == channel && d["address"] == address)
            .unwrap_or_else(|| panic!("no {channel} delivery to {address}"))
    }

    fn wait(&self, what: &str, ok: impl Fn() -> bool) {
        let start = Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}; twilio log: {:#?}; deliveries: {:#?}",
                self.events(""),
                self.p.sql("SELECT channel || ' ' || address || ' ' || state || ' ' || COALESCE(last_error, '') FROM deliveries")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The Twilio server's events of one kind ("" for all).
    fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("log line"))
            .filter(|e| kind.is_empty() || e["event"] == kind)
            .collect()
    }

    fn calls_to(&self, number: &str) -> usize {
        self.events("call")
            .iter()
            .filter(|e| e["form"]["To"] == number)
            .count()
    }

    /// POSTs JSON to the Twilio server's control routes.
    fn control(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        // Python's stdlib, like the server itself (no extra package in CI).
        const POST: &str = "import sys, urllib.request as u; \
            r = u.Request(sys.argv[1], data=sys.argv[2].encode(), headers={'Content-Type': 'application/json'}); \
            print(u.urlopen(r, timeout=30).read().decode())";
        let out = Command::new("/usr/bin/python3")
            .args(["-c", POST])
            .arg(format!("http://127.0.0.1:{}{path}", self.twilio.port))
            .arg(body.to_string())
            .output()
            .expect("python3");
        serde_json::from_slice(&out.stdout).expect("control reply")
    }
}

fn state_of(v: &Voice, id: &str, address: &str) -> String {
    v.delivery(id, "voice", address)["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn answered_calls_speak_the_text_twice_in_the_recipients_language_and_1_acknowledges() {
    let v = Voice::start(
        "",
        &[
            // A mobile and a landline: the call goes to the landline.
            "c1,Anna,333 0000001,0551 000001,,,centro,cittadini,it,",
            "c2,John,0552 000001,,,,centro,cittadini,en,",
        ],
    );
    let (code, id) = v.send("Allerta rossa: evacuare il piano terra", &[]);
    assert_eq!(code, 0, "send exits 0 once the calls are placed");
    v.wait("both calls completed", || {
        state_of(&v, &id, "+390551000001") == "delivered"
            && state_of(&v, &id, "+390552000001") == "delivered"
    });

    // The request, as Twilio's Calls resource takes it.
    let calls = v.events("call");
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let anna = calls
        .iter()
        .find(|c| c["form"]["To"] == "+390551000001")
        .expect("the landline is called, not the mobile");
    let base = format!("http://127.0.0.1:{}/voice/", v.serve_port);
    assert_eq!(anna["form"]["From"], "+390571000000");
    assert!(
        anna["form"]["Url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{base}twiml?d="))
    );
    assert!(
        anna["form"]["StatusCallback"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{base}status?d="))
    );
    assert_eq!(anna["form"]["StatusCallbackEvent"], "completed");

    // The TwiML: the text twice in it-IT / en-GB, then the prompt in <Gather>.
    let twiml: Vec<String> = v
        .events("twiml")
        .iter()
        .map(|e| {
            assert_eq!(e["http"], 200, "{e}");
            e["body"].as_str().unwrap().to_owned()
        })
        .collect();
    let it = twiml
        .iter()
        .find(|t| t.contains("it-IT"))
        .expect("Italian TwiML");
    assert_eq!(
        it.matches("<Say language=\"it-IT\">Allerta rossa: evacuare il piano terra</Say>")
            .count(),
        2,
        "{it}"
    );
    let gather = &it[it.find("<Gather").expect("gather")..];
    assert!(gather.contains("numDigits=\"1\""), "{it}");
    assert!(gather.contains("Premi 1 per confermare"), "{it}");
    let en = twiml
        .iter()
        .find(|t| t.contains("en-GB"))
        .expect("English TwiML");
    assert_eq!(
        en.matches("<Say language=\"en-GB\">English: Allerta rossa: evacuare il piano terra</Say>")
            .count(),
        2,
        "{en}"
    );
    assert!(en.contains("Press 1 to confirm"), "{en}");

    // 1 pressed → acknowledged, like Telegram's "Ricevuto".
    let status = v.json(&["status", &id]);
    assert_eq!(status["channels"]["voice"]["delivered"], 2, "{status}");
    assert_eq!(status["channels"]["voice"]["acknowledged"], 1, "{status}");
    assert!(v.delivery(&id, "voice", "+390551000001")["acknowledged_at"].is_string());
    assert!(v.delivery(&id, "voice", "+390552000001")["acknowledged_at"].is_null());
    assert_eq!(
        status["escalation"],
        serde_json::json!({"acknowledged": 1, "not_acknowledged": 1, "next": null})
    );
    // The call ids are the deliveries' provider ids.
    let sid = anna_sid(&v);
    assert_eq!(
        v.delivery(&id, "voice", "+390551000001")["provider_id"],
        sid
    );
}

fn anna_sid(v: &Voice) -> String {
    v.events("call")
        .iter()
        .find(|c| c["form"]["To"] == "+390551000001")
        .and_then(|c| c["sid"].as_str())
        .expect("sid")
        .to_owned()
}

#[test]
fn busy_is_called_again_no_answer_until_attempts_run_out_and_an_invalid_number_only_once() {
    let v = Voice::start(
        "",
        &[
            "busy,Busy,0553 000001,,,,centro,cittadini,it,",
            "away,Away,0554 000001,,,,centro,cittadini,it,",
            "bad,Bad,0559 000001,,,,centro,cittadini,it,",
        ],
    );
    let (code, id) = v.send("Allerta", &[]);
    assert_eq!(code, 3, "the invalid number failed");
    let bad = v.delivery(&id, "voice", "+390559000001");
    assert_eq!(bad["state"], "failed");
    assert!(
        bad["last_error"].as_str().unwrap().contains("21211"),
        "{bad}"
    );

    // The timer's resume, every "minute" (retry_after is 1s here).
    v.wait("the retries to end", || {
        std::thread::sleep(Duration::from_millis(1100));
        let (code, _, err) = v.run(&["resume"]);
        assert!(code == 0 || code == 3, "resume: {code} {err}");
        state_of(&v, &id, "+390553000001") == "delivered"
            && state_of(&v, &id, "+390554000001") == "failed"
    });
    assert_eq!(v.calls_to("+390553000001"), 2, "busy, then answered");
    assert_eq!(
        v.calls_to("+390554000001"),
        3,
        "attempts = 3 calls in total"
    );
    assert_eq!(
        v.calls_to("+390559000001"),
        0,
        "Twilio refused the request; nothing to call again"
    );
    assert_eq!(
        v.events("refused")
            .iter()
            .filter(|e| e["to"] == "+390559000001")
            .count(),
        1,
        "the invalid number is asked once"
    );
    let away = v.delivery(&id, "voice", "+390554000001");
    assert!(
        away["last_error"]
            .as_str()
            .unwrap()
            .contains("no-answer on each of 3 calls"),
        "{away}"
    );
    // Nothing more happens on another resume.
    std::thread::sleep(Duration::from_millis(1100));
    v.run(&["resume"]);
    assert_eq!(v.calls_to("+390554000001"), 3);
    assert_eq!(v.calls_to("+390553000001"), 2);
    // The officer's `retry` gives the unanswered number a fresh round.
    let (_, _, err) = v.run(&["retry", &id, "--channel", "voice", "--yes"]);
    assert_eq!(v.calls_to("+390554000001"), 4, "{err}");
}

#[test]
fn forged_callbacks_are_refused_and_change_nothing() {
    let v = Voice::start("", &["held,Held,0555 000001,,,,centro,cittadini,it,"]);
    let (_, id) = v.send("Allerta", &[]);
    v.wait("the held call to be placed", || {
        v.calls_to("+390555000001") == 1 && state_of(&v, &id, "+390555000001") == "sent"
    });
    let call = &v.events("call")[0];
    let sid = call["sid"].as_str().unwrap();
    let status_url = call["form"]["StatusCallback"].as_str().unwrap().to_owned();
    let twiml_url = call["form"]["Url"].as_str().unwrap().to_owned();
    let gather_url = twiml_url.replace("/twiml?", "/gather?");
    let completed = serde_json::json!([
        ["AccountSid", SID],
        ["CallSid", sid],
        ["CallStatus", "completed"],
        ["To", "+390555000001"]
    ]);
    let pressed = serde_json::json!([["AccountSid", SID], ["CallSid", sid], ["Digits", "1"]]);
    let wrong_key = status_url.replace("&k=", "&k=0");
    let other_delivery = status_url.replace("?d=", "?d=9");
    for (url, params, sign) in [
        (&status_url, &completed, "bad"),
        (&status_url, &completed, "none"),
        (&wrong_key, &completed, "good"),
        (&other_delivery, &completed, "good"),
        (&gather_url, &pressed, "bad"),
        (&gather_url.replace("&k=", "&k=0"), &pressed, "good"),
        (&twiml_url, &completed, "bad"),
    ] {
        let r = v.control(
            "/control/forge",
            &serde_json::json!({"url": url, "params": params, "sign": sign}),
        );
        assert_eq!(r["status"], 403, "{url} signed {sign}: {r}");
    }
    let d = v.delivery(&id, "voice", "+390555000001");
    assert_eq!(d["state"], "sent", "{d}");
    assert!(d["acknowledged_at"].is_null(), "{d}");
    // The genuine callbacks still work.
    v.control("/control/complete", &serde_json::json!({}));
    v.wait("the genuine completion", || {
        state_of(&v, &id, "+390555000001") == "delivered"
    });
    assert!(v.delivery(&id, "voice", "+390555000001")["acknowledged_at"].is_string());
}

#[test]
fn a_crash_after_the_call_request_does_not_call_twice() {
    let v = Voice::start("", &["held,Held,0555 000001,,,,centro,cittadini,it,"]);
    let mut send = v
        .cmd()
        .args([
            "send",
            "chiamata",
            "--var",
            "testo=Allerta",
            "--all",
            "--yes",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("send");
    // The call is placed and its id recorded: then the process dies.
    v.wait("the call id in the ledger", || {
        v.p.path("allerta.db").exists()
            && v.p
                .sql("SELECT COUNT(*) FROM voice_calls")
                .first()
                .map(String::as_str)
                == Some("1")
    });
    send.kill().expect("SIGKILL");
    send.wait().expect("reaped");
    // The engine's batched `sent` (and the alert's `settled`) may or may
    // not have landed before the kill; an OS crash loses them (SPEC §11:
    // outcomes may stay batched), so they are put back as such a crash
    // leaves them: the call's outcome unknown, the alert `sending`. Only
    // the call id, committed before anything else, survives.
    let conn = rusqlite::Connection::open(v.p.path("allerta.db")).expect("db");
    conn.execute_batch(
        "UPDATE deliveries SET state = 'sending' WHERE channel = 'voice';
         UPDATE alerts SET state = 'sending', settled_at = NULL;",
    )
    .expect("as after a crash");
    drop(conn);

    let (code, _, err) = v.run(&["resume"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        v.calls_to("+390555000001"),
        1,
        "the call still ringing is not placed again"
    );
    assert_eq!(
        v.events("lookup").len(),
        1,
        "Twilio was asked about the call first"
    );
    let id =
        v.p.sql("SELECT alert_id FROM deliveries WHERE channel = 'voice'")[0].clone();
    assert_eq!(state_of(&v, &id, "+390555000001"), "sent");
    v.control("/control/complete", &serde_json::json!({}));
    v.wait("its callback", || {
        state_of(&v, &id, "+390555000001") == "delivered"
    });
    v.run(&["resume"]);
    assert_eq!(v.calls_to("+390555000001"), 1);
}

#[test]
fn escalation_reaches_only_who_did_not_acknowledge_and_never_a_cancelled_alert() {
    let v = Voice::start(
        "[escalation]\nsteps = [{ after = \"5s\", channel = \"sms\" }]\n",
        &[
            "yes,Presses,333 0000001,0551 000001,,,centro,cittadini,it,",
            "no,Listens,333 0000002,0552 000002,,,centro,cittadini,it,",
        ],
    );
    // --channel restricts the first round only: a step's channel there is refused.
    let (code, _, err) = v.run(&[
        "send",
        "chiamata",
        "--var",
        "testo=x",
        "--all",
        "--yes",
        "--channel",
        "sms",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is an escalation step"), "{err}");
    let (code, id) = v.send("Allerta", &[]);
    assert_eq!(code, 0, "a held step is not a failure");
    assert!(
        v.p.outbox("sms").is_empty(),
        "a step's channel is not used in the first round"
    );
    v.wait("both calls", || {
        state_of(&v, &id, "+390551000001") == "delivered"
            && state_of(&v, &id, "+390552000002") == "delivered"
    });
    let esc = v.json(&["status", &id])["escalation"].clone();
    assert_eq!(esc["acknowledged"], 1, "{esc}");
    assert_eq!(esc["not_acknowledged"], 1, "{esc}");
    assert_eq!(esc["next"]["channel"], "sms", "{esc}");
    let at = chrono::DateTime::parse_from_rfc3339(esc["next"]["at"].as_str().unwrap())
        .expect("RFC 3339");
    let (_, text, _) = v.run(&["status", &id]);
    assert!(
        text.contains("acknowledged: 1, not acknowledged: 1; next: sms at"),
        "{text}"
    );

    // Before the step is due the timer does nothing (checked when this
    // machine got here with a second to spare); after, it sends.
    if chrono::Utc::now() + chrono::Duration::seconds(1) < at {
        v.run(&["resume"]);
        assert!(chrono::Utc::now() >= at || v.p.outbox("sms").is_empty());
    }
    while chrono::Utc::now() <= at {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, _, err) = v.run(&["resume"]);
    assert_eq!(code, 0, "{err}");
    let sms = v.p.outbox("sms");
    assert_eq!(sms.len(), 1, "{sms:#?}");
    assert_eq!(
        sms[0]["to"], "+393330000002",
        "only who did not acknowledge"
    );
    let skipped = v.delivery(&id, "sms", "+393330000001");
    assert_eq!(skipped["state"], "skipped");
    assert!(
        skipped["last_error"]
            .as_str()
            .unwrap()
            .contains("acknowledged"),
        "{skipped}"
    );
    assert_eq!(
        v.json(&["status", &id])["escalation"]["next"],
        serde_json::Value::Null
    );

    // A cancelled alert never escalates.
    let (_, second) = v.send("Seconda allerta", &["--key", "second"]);
    let (code, _, err) = v.run(&["cancel", &second, "--yes"]);
    assert_eq!(code, 0, "{err}");
    let held = v.deliveries(&second);
    let steps: Vec<_> = held.iter().filter(|d| d["channel"] == "sms").collect();
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|d| d["state"] == "skipped"), "{steps:#?}");
    std::thread::sleep(Duration::from_millis(5200));
    v.run(&["resume"]);
    assert_eq!(v.p.outbox("sms").len(), 1, "nothing more after the cancel");
    assert_eq!(
        v.json(&["status", &second])["escalation"]["next"],
        serde_json::Value::Null
    );
}

#[test]
fn templates_check_refuses_a_voice_text_over_90_seconds_and_drills_speak_their_prefix() {
    let p = Project::new("[channels.voice]\ntransport = \"outbox\"\n");
    let config = std::fs::read_to_string(p.path("allerta.toml")).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    p.write(
        "allerta.toml",
        &config.replace(
            &format!("templates_dir = \"{}\"", repo.join("templates").display()),
            "templates_dir = \"templates\"",
        ),
    );
    p.write("templates/chiamata.toml", TEMPLATE);
    // 60 words: about 24 s at 150 words per minute.
    let (code, out, err) = p.run(&[
        "preview",
        "chiamata",
        "--var",
        &format!("testo={}", "parola ".repeat(60)),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("voice: 60 words, about 24 s spoken once (limit 90 s)"),
        "{out}"
    );
    let (_, doc, _) = p.json(&["preview", "chiamata", "--var", "testo=uno due tre"]);
    assert_eq!(
        doc["languages"]["it"]["channels"]["voice"]["voice"]["words"], 3,
        "{doc}"
    );

    // 240 words: 96 s.
    let long = TEMPLATE.replace(
        "example = \"Prova\"",
        &format!("example = \"{}\"", "parola ".repeat(240)),
    );
    p.write("templates/lunga.toml", &long);
    let (code, out, _) = p.run(&["templates", "check"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("FAIL lunga"), "{out}");
    assert!(
        out.contains("voice: about 96 s to speak (240 words at 150 words per minute) exceed 90 s"),
        "{out}"
    );
    assert!(out.contains("ok   chiamata"), "{out}");

    // A drill is spoken with its prefix.
    p.write(
        "contacts/voce.csv",
        &format!("{HEADER}\nd1,Drill,,0551 000009,,,centro,esercitazione,it,\n"),
    );
    let (code, _, err) = p.run(&[
        "send",
        "chiamata",
        "--var",
        "testo=Prova di chiamata",
        "--drill",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    let calls = p.outbox("voice");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["to"], "+390551000009");
    assert_eq!(calls[0]["text"], "[ESERCITAZIONE] Prova di chiamata");
}
