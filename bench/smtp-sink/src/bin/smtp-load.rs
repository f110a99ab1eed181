//! smtp-load: a small SMTP load generator, to measure smtp-sink alone.
//!
//! Usage: smtp-load PORT [--messages N] [--connections C] [--size BYTES] [--threads T]
//!
//! Opens C connections to 127.0.0.1:PORT (TCP_NODELAY) and sends N messages in
//! total, one recipient each, the way lettre does it: MAIL, RCPT, DATA each
//! waiting for its reply (no pipelining), then the body and the final dot.
//! Prints `SENT <n> SECONDS <s> MSG_PER_S <rate>` and exits 0 when every
//! message got a 250, 1 otherwise.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Conn = BufReader<TcpStream>;

async fn reply(conn: &mut Conn, line: &mut String) -> std::io::Result<u16> {
    loop {
        line.clear();
        if conn.read_line(line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "server closed",
            ));
        }
        let b = line.as_bytes();
        if b.len() >= 4 && b[3] == b'-' {
            continue; // multi-line reply
        }
        return line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad reply {line:?}")));
    }
}

async fn expect(conn: &mut Conn, line: &mut String, code: u16) -> std::io::Result<()> {
    let got = reply(conn, line).await?;
    if got == code {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "expected {code}, got {line:?}"
        )))
    }
}

async fn worker(
    port: u16,
    next: Arc<AtomicU64>,
    total: u64,
    body: Arc<Vec<u8>>,
) -> std::io::Result<u64> {
    let sock = TcpStream::connect(("127.0.0.1", port)).await?;
    sock.set_nodelay(true)?;
    let mut conn = BufReader::new(sock);
    let mut line = String::new();
    expect(&mut conn, &mut line, 220).await?;
    conn.get_mut().write_all(b"EHLO smtp-load\r\n").await?;
    expect(&mut conn, &mut line, 250).await?;
    let mut sent = 0;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            break;
        }
        let s = conn.get_mut();
        s.write_all(b"MAIL FROM:<bench@example.org>\r\n").await?;
        expect(&mut conn, &mut line, 250).await?;
        let rcpt = format!("RCPT TO:<user{i}@example.org>\r\n");
        conn.get_mut().write_all(rcpt.as_bytes()).await?;
        expect(&mut conn, &mut line, 250).await?;
        conn.get_mut().write_all(b"DATA\r\n").await?;
        expect(&mut conn, &mut line, 354).await?;
        conn.get_mut().write_all(&body).await?;
        expect(&mut conn, &mut line, 250).await?;
        sent += 1;
    }
    conn.get_mut().write_all(b"QUIT\r\n").await?;
    let _ = reply(&mut conn, &mut line).await;
    Ok(sent)
}

fn make_body(size: usize) -> Vec<u8> {
    let mut body = b"From: bench@example.org\r\nTo: user@example.org\r\n\
Subject: Allerta arancione - rischio idraulico\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n"
        .to_vec();
    let text = b"Allerta arancione per rischio idraulico dalle ore 14, fino a nuovo avviso.\r\n";
    while body.len() < size {
        body.extend_from_slice(text);
    }
    body.extend_from_slice(b".\r\n");
    body
}

fn main() -> ExitCode {
    let mut port: Option<u16> = None;
    let (mut total, mut conns, mut size, mut threads) = (20_000u64, 8usize, 1500usize, 1usize);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> u64 {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("smtp-load: {name} needs a number");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--messages" => total = num("--messages"),
            "--connections" => conns = num("--connections").max(1) as usize,
            "--size" => size = num("--size") as usize,
            "--threads" => threads = num("--threads").max(1) as usize,
            p => match p.parse() {
                Ok(p) if port.is_none() => port = Some(p),
                _ => {
                    eprintln!(
                        "usage: smtp-load PORT [--messages N] [--connections C] [--size BYTES] [--threads T]"
                    );
                    return ExitCode::from(2);
                }
            },
        }
    }
    let Some(port) = port else {
        eprintln!("smtp-load: PORT is required");
        return ExitCode::from(2);
    };
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    rt.block_on(async move {
        let next = Arc::new(AtomicU64::new(0));
        let body = Arc::new(make_body(size));
        let start = Instant::now();
        let tasks: Vec<_> = (0..conns)
            .map(|_| tokio::spawn(worker(port, next.clone(), total, body.clone())))
            .collect();
        let mut sent = 0;
        let mut ok = true;
        for t in tasks {
            match t.await.expect("worker panicked") {
                Ok(n) => sent += n,
                Err(e) => {
                    eprintln!("smtp-load: {e}");
                    ok = false;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "SENT {sent} SECONDS {secs:.3} MSG_PER_S {:.0}",
            sent as f64 / secs
        );
        if ok && sent == total {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    })
}
