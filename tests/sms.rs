//! SMS through a real Kannel (bearerbox + smsbox + fakesmsc, or an
//! `smsc = http` route to a small test operator), with delivery reports
//! received by the real `allerta serve`.

mod common;
#[path = "servers/kannel.rs"]
mod kannel;

#[path = "servers/sms_support.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Project;
use kannel::{Kannel, Route, free_port, http_get, http_get_with, wait_until};
use support::{Serve, TOKEN, phones};

/// A project whose SMS channel is Kannel, reports going to `serve`.
fn project(sendsms_url: &str, password: &str, extra: &str) -> Project {
    support::project(&format!(
        r#"
[channels.sms]
transport = "kannel"
url = "{sendsms_url}"
username = "{user}"
password = "{password}"
sender = "ComuneML"
rate_per_second = 200
max_segments = 3
dlr_url = "__SERVE__/sms/dlr"
{extra}
[serve]
listen = "127.0.0.1:0"
dlr_token = "{TOKEN}"
"#,
        user = kannel::USER,
    ))
}

fn sms_counts(p: &Project) -> serde_json::Value {
    support::sms_counts(p, &[])
}

fn wait_for_counts(p: &Project, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    support::wait_for_counts(p, &[], what, ok)
}

#[test]
fn hundred_recipients_arrive_with_the_exact_text_and_end_delivered() {
    let k = Kannel::start(Route::Fake);
    let p = project(&k.sendsms_url(), kannel::PASSWORD, "");
    p.contacts("cittadini.csv", &phones("+39333", 100));
    let serve = Serve::start(&p, &[]);
    let text = "Comune Montelupo: allerta ARANCIONE rischio idraulico dalle ore 14, evita sottopassi e argini. Info 0571 000000 {test} €";

    let (code, doc, err) = p.json(&[
        "send",
        "messaggio",
        "--var",
        &format!("testo={text}"),
        "--all",
        "--yes",
    ]);

    assert_eq!(code, 0, "{err}\n{doc}");
    wait_until(Duration::from_secs(60), "100 messages at fakesmsc", || {
        k.received().len() >= 100
    });
    let received = k.received();
    assert_eq!(received.len(), 100);
    let mut numbers: Vec<&str> = received.iter().map(|(to, _)| to.as_str()).collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 100, "each recipient exactly once");
    for (to, got) in &received {
        assert_eq!(got, text, "text to {to}");
    }
    wait_for_counts(&p, "100 delivered", |c| c["delivered"] == 100);
    let c = sms_counts(&p);
    assert_eq!(
        (c["sent"].as_u64(), c["failed"].as_u64()),
        (Some(0), Some(0))
    );
    // Kannel reported "accepted by the SMSC" (8) and "delivered" (1) for each.
    let reports = p.sql("SELECT COUNT(*) FROM attempts WHERE outcome = 'report'");
    assert!(reports[0].parse::<u32>().unwrap() >= 100, "{reports:?}");
    let leaked = p.sql(&format!(
        "SELECT COUNT(*) FROM attempts WHERE detail LIKE '%{TOKEN}%'"
    ));
    assert_eq!(leaked, ["0"], "the shared token is never stored");
    let metrics = http_get_with(serve.port, "/metrics", &bearer())
        .expect("metrics")
        .1;
    assert!(
        metrics.contains("allerta_deliveries{channel=\"sms\",state=\"delivered\"} 100"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("allerta_reports_received_total{source=\"kannel\",result=\"delivered\"} 100"),
        "{metrics}"
    );
    assert!(
        metrics.contains("allerta_report_latency_seconds_count 100"),
        "{metrics}"
    );
    let (human_code, human, _) = p.run(&["status"]);
    assert_eq!(human_code, 0);
    assert!(
        human.contains("sms: 100 delivered, 0 sent (awaiting report), 0 failed"),
        "{human}"
    );
    assert_eq!(serve.terminate(), Some(0), "serve stops cleanly on SIGTERM");
}

#[test]
fn accented_quote_and_emoji_round_trip_as_ucs2_and_no_surrogate_pair_is_split() {
    let k = Kannel::start(Route::Fake);
    let p = project(&k.sendsms_url(), kannel::PASSWORD, "");
    p.contacts("cittadini.csv", &phones("+39333", 2));
    let _serve = Serve::start(&p, &[]);
    let short = "È l’allerta 😀 ok";
    // A long UCS-2 text whose 67th UTF-16 unit is the first half of an
    // emoji: a naive 67-unit split (Kannel's) would cut it in two.
    let mut long = String::from("Pericolo È’ ");
    while !long.encode_utf16().count().is_multiple_of(2) {
        long.push('x');
    }
    while long.encode_utf16().count() < 150 {
        long.push('🌊');
    }
    let units: Vec<u16> = long.encode_utf16().collect();
    assert!(
        (0xD800..0xDC00).contains(&units[66]),
        "the test text straddles a part boundary"
    );

    for text in [short, long.as_str()] {
        let (code, doc, err) = p.json(&[
            "send",
            "messaggio",
            "--var",
            &format!("testo={text}"),
            "--all",
            "--yes",
        ]);
        assert_eq!(code, 0, "{err}\n{doc}");
    }

    wait_until(Duration::from_secs(60), "4 messages", || {
        k.received().len() >= 4
    });
    let received = k.received();
    assert_eq!(
        received.iter().filter(|(_, t)| t == short).count(),
        2,
        "{received:?}"
    );
    assert_eq!(
        received.iter().filter(|(_, t)| *t == long).count(),
        2,
        "{received:?}"
    );
    for (to, part) in k.raw_parts() {
        assert!(
            part.is_some(),
            "a part to {to} is not valid text on its own (split pair)"
        );
    }
    assert_eq!(
        k.log().matches(" ucs-2 ").count(),
        2,
        "the short text went as one UCS-2 message each"
    );
    // The latest alert (the long text, 3 parts each) is delivered only when
    // every part is; the first alert's are delivered too.
    wait_for_counts(&p, "the long text delivered", |c| c["delivered"] == 2);
    wait_until(Duration::from_secs(30), "4 delivered", || {
        p.sql("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'") == ["4"]
    });
    let parts = p.sql(
        "SELECT COUNT(DISTINCT json_extract(detail, '$.part')) FROM attempts
         WHERE outcome = 'report' AND json_extract(detail, '$.parts') = 3",
    );
    assert_eq!(parts, ["3"], "each of the 3 parts was reported on its own");
}

#[test]
fn a_failing_route_gives_permanent_rejects_and_undeliverable_reports_that_end_failed() {
    let operator_port = free_port();
    let callback_port = free_port();
    let log = tempfile::NamedTempFile::new().expect("log");
    let mut op = Command::new("/usr/bin/python3");
    op.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/servers/sms_operator.py"
    ))
    .args([
        "--port",
        &operator_port.to_string(),
        "--kannel-port",
        &callback_port.to_string(),
        "--log",
    ])
    .arg(log.path());
    let _operator = common::start_server(op);
    let k = Kannel::start(Route::Operator {
        operator_port,
        callback_port,
    });
    let p = project(&k.sendsms_url(), kannel::PASSWORD, "");
    let mut rows = phones("+39333", 2); // delivered
    rows.extend(phones("+39339", 2)); // rejected by the operator: report 16
    rows.extend(phones("+39338", 2)); // accepted, then undeliverable: 8, 2
    rows.extend(phones("+39337", 2)); // denied by Kannel itself: 400
    p.contacts("cittadini.csv", &rows);
    let _serve = Serve::start(&p, &[]);

    let (code, doc, err) = p.json(&[
        "send",
        "messaggio",
        "--var",
        "testo=Prova di instradamento",
        "--all",
        "--yes",
    ]);

    assert_eq!(
        code, 3,
        "Kannel's 400 fails those deliveries at once: {err}\n{doc}"
    );
    wait_for_counts(&p, "2 delivered, 6 failed", |c| {
        c["delivered"] == 2 && c["failed"] == 6
    });
    let reason = |prefix: &str| {
        p.sql(&format!(
            "SELECT last_error FROM deliveries WHERE address LIKE '{prefix}%' ORDER BY id"
        ))
    };
    for r in reason("+39339") {
        assert!(
            r.contains("rejected by the SMSC") && r.contains("16"),
            "{r}"
        );
    }
    for r in reason("+39338") {
        assert!(r.contains("undeliverable"), "{r}");
    }
    for r in reason("+39337") {
        assert!(r.contains("400") && r.contains("denied"), "{r}");
    }
    let (_, status, _) = p.run(&["status"]);
    assert!(
        status.contains("sms: 2 delivered, 0 sent (awaiting report), 6 failed"),
        "{status}"
    );
}

#[test]
fn an_over_long_text_is_refused_before_anything_is_sent() {
    let k = Kannel::start(Route::Fake);
    let p = project(&k.sendsms_url(), kannel::PASSWORD, "");
    p.contacts("cittadini.csv", &phones("+39333", 3));
    let long = "Allerta ".repeat(60); // 480 GSM-7 septets: 4 segments > 3

    let (preview_code, out, _) =
        p.run(&["preview", "messaggio", "--var", &format!("testo={long}")]);
    let (send_code, _, err) = p.run(&[
        "send",
        "messaggio",
        "--var",
        &format!("testo={long}"),
        "--all",
        "--yes",
    ]);
    let (empty_code, _, empty_err) =
        p.run(&["send", "messaggio", "--var", "testo=  ", "--all", "--yes"]);
    p.write(
        "templates/lungo.toml",
        &support::TEMPLATE.replace("example = \"Prova\"", &format!("example = \"{long}\"")),
    );
    let (check_code, check_out, check_err) = p.run(&["templates", "check"]);

    assert_eq!(preview_code, 2, "{out}");
    assert!(
        out.contains("4 segments") && out.contains("max_segments = 3"),
        "{out}"
    );
    assert_eq!(send_code, 2, "{err}");
    assert!(err.contains("max_segments"), "{err}");
    assert_eq!(empty_code, 2, "{empty_err}");
    let checked = format!("{check_out}{check_err}");
    assert_eq!(check_code, 2, "{checked}");
    assert!(
        checked.contains("lungo") && checked.contains("max_segments = 3"),
        "{checked}"
    );
    assert!(empty_err.contains("empty"), "{empty_err}");
    assert_eq!(check_code, 2, "{check_out}{check_err}");
    assert!(
        format!("{check_out}{check_err}").contains("max_segments = 3"),
        "{check_out}{check_err}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(k.received().is_empty(), "nothing reached the SMSC");
    if p.path("allerta.db").exists() {
        assert_eq!(p.sql("SELECT COUNT(*) FROM deliveries"), ["0"]);
    }
}

#[test]
fn wrong_credentials_stop_the_channel_instead_of_failing_every_delivery() {
    let k = Kannel::start(Route::Fake);
    let p = project(&k.sendsms_url(), "not-the-password", "");
    p.contacts("cittadini.csv", &phones("+39333", 50));
    let _serve = Serve::start(&p, &[]);

    let (code, _, err) = p.run(&[
        "send",
        "messaggio",
        "--var",
        "testo=Prova",
        "--all",
        "--yes",
    ]);

    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("channel sms stopped") && err.contains("credentials"),
        "{err}"
    );
    assert_eq!(
        p.sql("SELECT COUNT(*) FROM deliveries WHERE state = 'failed'"),
        ["0"]
    );
    assert_eq!(
        p.sql("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'"),
        ["50"]
    );
    let attempted: u32 = p.sql("SELECT COUNT(*) FROM attempts WHERE outcome != 'not-attempted'")[0]
        .parse()
        .unwrap();
    assert_eq!(
        attempted, 0,
        "a channel-level error is not a delivery attempt"
    );
    assert!(k.received().is_empty());
}

#[test]
fn the_gateway_down_at_start_and_up_ten_seconds_later_gives_retries_then_sent() {
    let ports = kannel::Ports::pick();
    let url = format!("http://127.0.0.1:{}/cgi-bin/sendsms", ports.sendsms);
    let p = project(&url, kannel::PASSWORD, "");
    let config = std::fs::read_to_string(p.path("allerta.toml")).unwrap();
    p.write(
        "allerta.toml",
        &config
            .replace("max_attempts = 4", "max_attempts = 60")
            .replace("max_backoff = \"1s\"", "max_backoff = \"1500ms\""),
    );
    p.contacts("cittadini.csv", &phones("+39333", 5));
    let _serve = Serve::start(&p, &[]);
    let started = Instant::now();
    let send = p
        .cmd()
        .args([
            "--json",
            "send",
            "messaggio",
            "--var",
            "testo=Gateway in ritardo",
            "--all",
            "--yes",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("send");

    std::thread::sleep(Duration::from_secs(10));
    let k = Kannel::start_on(ports, Route::Fake);
    let out = send.wait_with_output().expect("send finishes");

    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() >= Duration::from_secs(10));
    let transient: u32 = p.sql("SELECT COUNT(*) FROM attempts WHERE outcome = 'transient'")[0]
        .parse()
        .unwrap();
    assert!(
        transient >= 5,
        "each delivery was retried while the gateway was down ({transient})"
    );
    assert!(
        p.sql("SELECT detail FROM attempts WHERE outcome = 'transient' LIMIT 1")[0]
            .contains("unreachable")
    );
    assert_eq!(k.received().len(), 5);
    wait_for_counts(&p, "5 delivered", |c| c["delivered"] == 5);
}

/// `/metrics` needs the `[serve]` token (SPEC §13).
fn bearer() -> String {
    format!("Authorization: Bearer {TOKEN}\r\n")
}

/// POST with a body through a minimal HTTP/1.0 client: (status, body).
fn http_post(port: u16, path: &str, headers: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        raw.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

#[test]
fn reports_need_the_shared_token_and_repeated_or_late_ones_change_nothing() {
    // The outbox transport leaves SMS deliveries `sent`: reports are forged here.
    let p = support::project(&format!(
        "[channels.sms]\ntransport = \"outbox\"\n[serve]\nlisten = \"127.0.0.1:0\"\ndlr_token = \"{TOKEN}\"\n"
    ));
    p.contacts("cittadini.csv", &phones("+39333", 2));
    let serve = Serve::start(&p, &[]);
    let (code, _, err) = p.run(&[
        "send",
        "messaggio",
        "--var",
        "testo=Prova",
        "--all",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    let ids = p.sql("SELECT id FROM deliveries ORDER BY id");
    let keys = p.sql("SELECT token FROM deliveries ORDER BY id");
    let state = |i: usize| {
        p.sql(&format!(
            "SELECT state FROM deliveries WHERE id = {}",
            ids[i]
        ))[0]
            .clone()
    };
    let attempts = || p.sql("SELECT COUNT(*) FROM attempts")[0].clone();
    let dlr = |i: usize, extra: &str| {
        http_get(
            serve.port,
            &format!("/sms/dlr?id={}&k={}&status={extra}", ids[i], keys[i]),
        )
        .expect("serve answers")
    };
    let before = attempts();

    // No token, a wrong token, or a wrong delivery token: refused, nothing changes.
    assert_eq!(dlr(0, "1").0, 401);
    assert_eq!(dlr(0, "1&token=wrong").0, 401);
    let (status, _) = http_post(
        serve.port,
        "/sms/report",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "MessageSid=x&MessageStatus=delivered",
    );
    assert_eq!(status, 401);
    let forged = http_get(
        serve.port,
        &format!("/sms/dlr?id={}&k=0000&status=1&token={TOKEN}", ids[0]),
    )
    .unwrap();
    assert_eq!(forged.0, 404);
    assert_eq!((state(0).as_str(), attempts()), ("sent", before.clone()));

    // Accepted by the SMSC (8): kept, still sent. Delivered (1): delivered.
    assert_eq!(
        dlr(0, &format!("8&answer=ACK&token={TOKEN}")),
        (200, "recorded\n".into())
    );
    assert_eq!(state(0), "sent");
    assert_eq!(
        dlr(0, &format!("1&token={TOKEN}")),
        (200, "delivered\n".into())
    );
    assert_eq!(state(0), "delivered");
    let after_delivered = attempts();

    // The same report again changes nothing, not even the attempts.
    assert_eq!(
        dlr(0, &format!("1&token={TOKEN}")),
        (200, "duplicate\n".into())
    );
    assert_eq!(attempts(), after_delivered);
    // A late "queued" (4) or a rejection never downgrades delivered.
    assert_eq!(dlr(0, &format!("4&token={TOKEN}")).0, 200);
    assert_eq!(dlr(0, &format!("16&token={TOKEN}")).0, 200);
    assert_eq!(state(0), "delivered");

    // The bearer header works as well; undeliverable (2) fails a sent delivery.
    let (status, body) = http_post(
        serve.port,
        &format!("/sms/dlr?id={}&k={}&status=2", ids[1], keys[1]),
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        "",
    );
    assert_eq!((status, body.as_str()), (200, "failed\n"));
    assert_eq!(state(1), "failed");
    assert!(
        p.sql(&format!(
            "SELECT last_error FROM deliveries WHERE id = {}",
            ids[1]
        ))[0]
            .contains("undeliverable")
    );

    assert_eq!(http_get(serve.port, "/healthz"), Some((200, "ok\n".into())));
    let metrics = http_get_with(serve.port, "/metrics", &bearer()).unwrap().1;
    assert!(
        metrics.contains(
            "allerta_reports_received_total{source=\"kannel\",result=\"unauthorized\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("allerta_reports_received_total{source=\"kannel\",result=\"duplicate\"} 1"),
        "{metrics}"
    );
    assert_eq!(serve.terminate(), Some(0), "SIGTERM stops serve cleanly");
}

#[test]
fn serve_refuses_to_start_without_a_shared_token() {
    let p = support::project(
        "[channels.sms]\ntransport = \"outbox\"\n[serve]\nlisten = \"127.0.0.1:0\"\n",
    );

    let (code, _, err) = p.run(&["serve"]);

    assert_eq!(code, 2, "{err}");
    assert!(err.contains("dlr_token"), "{err}");
}

#[test]
fn a_long_gsm7_text_is_sent_in_parts_without_splitting_an_extension_character() {
    let k = Kannel::start(Route::Fake);
    let p = project(&k.sendsms_url(), kannel::PASSWORD, "");
    p.contacts("cittadini.csv", &phones("+39333", 1));
    let _serve = Serve::start(&p, &[]);
    // 152 septets, then '€' (ESC + e, 2 septets) where the first part ends.
    let text = format!("{}€ {}", "A".repeat(152), "fine del messaggio ".repeat(3));

    let (code, doc, err) = p.json(&[
        "send",
        "messaggio",
        "--var",
        &format!("testo={text}"),
        "--all",
        "--yes",
    ]);

    assert_eq!(code, 0, "{err}\n{doc}");
    wait_until(Duration::from_secs(30), "the message", || {
        !k.received().is_empty()
    });
    assert_eq!(
        k.received(),
        [("+393330000001".to_owned(), text.trim().to_owned())]
    );
    let parts = k.raw_parts();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0].1.as_deref(), Some("A".repeat(152).as_str()));
    assert!(!k.log().contains(" ucs-2 "), "GSM-7, not UCS-2");
    wait_for_counts(&p, "delivered", |c| c["delivered"] == 1);
}
