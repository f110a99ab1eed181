//! The public endpoints of `allerta serve` under abuse (SPEC §13): stalled
//! clients, too many connections, large bodies, forged or empty tokens,
//! `/metrics` without the token, `/healthz` on a broken database. The real
//! binary on a free loopback port; timeouts shortened through the
//! `[serve]` keys (their defaults are tested in the config's unit tests).

mod common;
#[path = "servers/sms_support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Project;
use support::{Serve, TOKEN};

fn project(serve_extra: &str) -> Project {
    support::project(&format!(
        "[channels.sms]\ntransport = \"outbox\"\n[serve]\nlisten = \"127.0.0.1:0\"\ndlr_token = \"{TOKEN}\"\n{serve_extra}\n"
    ))
}

/// One request with `Connection: close`: (status, body). Status 0 when
/// the server closed the connection without an answer.
fn request(port: u16, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get(port: u16, path: &str, headers: &str) -> (u16, String) {
    request(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n"),
        b"",
    )
}

/// Opens `n` connections that send half a request head and stall.
fn stalled(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .expect("write");
            s
        })
        .collect()
}

/// Whether the server closed `s` (EOF or reset) within `within`; a 408
/// answer before closing counts as closed.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn stalled_clients_are_closed_by_the_header_timeout_while_healthz_answers() {
    let p = project("header_read_timeout = \"2s\"");
    let serve = Serve::start(&p, &[]);
    let started = Instant::now();
    let mut slow = stalled(serve.port, 200);

    // 200 half-sent requests do not stop the health check...
    assert_eq!(get(serve.port, "/healthz", ""), (200, "ok\n".into()));
    // ...and the timeout closes every one of them, none before its time.
    let mut still_open = 0;
    for s in &mut slow {
        if !closed_within(s, Duration::from_secs(8)) {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "stalled connections left open");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "closed before the header timeout"
    );
    assert_eq!(get(serve.port, "/healthz", ""), (200, "ok\n".into()));
}

#[test]
fn above_the_connection_limit_new_clients_are_refused_until_the_timeouts_free_slots() {
    let p = project("header_read_timeout = \"2s\"\nmax_connections = 20");
    let serve = Serve::start(&p, &[]);
    let _slow = stalled(serve.port, 20);
    // Let the server accept them all before the 21st arrives.
    std::thread::sleep(Duration::from_millis(300));

    let mut extra = TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
    assert!(
        closed_within(&mut extra, Duration::from_secs(1)),
        "the 21st connection was kept waiting instead of refused"
    );
    // The stalled ones end at the header timeout; then it answers again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if get(serve.port, "/healthz", "") == (200, "ok\n".into()) {
            break;
        }
        assert!(Instant::now() < deadline, "healthz never answered again");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_body_over_64_kib_gets_413_on_every_route() {
    let p = project("");
    let serve = Serve::start(&p, &[]);
    let body = vec![b'a'; 100 * 1024];
    for path in [
        format!("/sms/dlr?token={TOKEN}"),
        format!("/sms/report?token={TOKEN}"),
        "/healthz".to_owned(),
        "/metrics".to_owned(),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        assert_eq!(request(serve.port, &head, &body).0, 413, "{path}");
    }
    // A chunked body without a length is cut at the limit too.
    let chunk = format!("{:x}\r\n", body.len());
    let mut chunked = chunk.into_bytes();
    chunked.extend_from_slice(&body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let head = format!(
        "POST /sms/report?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    assert_eq!(request(serve.port, &head, &chunked).0, 413);
}

#[test]
fn empty_or_wrong_tokens_never_pass() {
    let p = project("");
    let serve = Serve::start(&p, &[]);
    for (path, headers) in [
        ("/sms/dlr?id=1&k=x&status=1&token=", ""),
        ("/sms/dlr?id=1&k=x&status=1", "Authorization: Bearer \r\n"),
        ("/sms/dlr?id=1&k=x&status=1", "X-Allerta-Token: \r\n"),
        ("/sms/dlr?id=1&k=x&status=1&token=dlr-secret-42", ""),
        ("/sms/report?token=", ""),
    ] {
        assert_eq!(get(serve.port, path, headers).0, 401, "{path} {headers}");
    }
}

#[test]
fn serve_refuses_an_empty_or_short_token_file() {
    for (content, why) in [("\n", "empty"), ("short-token\n", "too short")] {
        let p = support::project(
            "[channels.sms]\ntransport = \"outbox\"\n[serve]\nlisten = \"127.0.0.1:0\"\ndlr_token_file = \"dlr-token\"\n",
        );
        p.write("dlr-token", content);
        let (code, _, err) = p.run(&["serve"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("dlr_token") && err.contains(why), "{err}");
    }
}

#[test]
fn metrics_need_the_bearer_token_unless_public() {
    let p = project("");
    let serve = Serve::start(&p, &[]);
    assert_eq!(get(serve.port, "/metrics", "").0, 401);
    assert_eq!(
        get(
            serve.port,
            "/metrics",
            "Authorization: Bearer wrong-token-000000\r\n"
        )
        .0,
        401
    );
    let (status, body) = get(
        serve.port,
        "/metrics",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
    );
    assert_eq!(status, 200);
    assert!(body.contains("allerta_deliveries"), "{body}");
    // The token in the query string is for the gateway's reports only.
    assert_eq!(
        get(serve.port, &format!("/metrics?token={TOKEN}"), "").0,
        401
    );
    drop(serve);

    let p = project("metrics_public = true");
    let serve = Serve::start(&p, &[]);
    assert_eq!(get(serve.port, "/metrics", "").0, 200);
}

#[test]
fn healthz_says_unavailable_without_error_text_when_the_database_cannot_be_read() {
    let p = project("");
    let serve = Serve::start(&p, &[]);
    assert_eq!(get(serve.port, "/healthz", ""), (200, "ok\n".into()));

    // The files are overwritten in place with something that is not a
    // database (same inodes: serve keeps them open and mapped).
    for name in ["allerta.db", "allerta.db-wal", "allerta.db-shm"] {
        let path = p.path(name);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len > 0 {
            std::fs::write(&path, vec![b'x'; len as usize]).expect("overwrite");
        }
    }

    let (status, body) = get(serve.port, "/healthz", "");
    assert_eq!((status, body.as_str()), (503, "unavailable\n"));
}

#[test]
fn serve_starts_without_the_credentials_of_other_commands() {
    // As under allerta-serve.service: only the report token is loaded; the
    // Telegram token and the SMS password files do not exist there.
    let p = support::project(&format!(
        "[channels.telegram]\ntransport = \"bot-api\"\ntoken_file = \"absent/telegram-token\"\n[channels.sms]\ntransport = \"kannel\"\nurl = \"http://127.0.0.1:9/cgi-bin/sendsms\"\nusername = \"allerta\"\npassword_file = \"absent/sms-password\"\n[serve]\nlisten = \"127.0.0.1:0\"\ndlr_token = \"{TOKEN}\"\n"
    ));
    let serve = Serve::start(&p, &[]);
    assert_eq!(get(serve.port, "/healthz", ""), (200, "ok\n".into()));
    drop(serve);
    // A command that uses them still says which one is missing (exit 2).
    let (code, _, err) = p.run(&["send", "messaggio", "--var", "testo=x", "--all", "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("absent/"), "{err}");
}
