//! smtp-sink: a fast SMTP server that accepts and discards every message and
//! counts them, for allerta's end-to-end benchmark (bench/run.sh).
//!
//! Usage: smtp-sink [PORT] [--expect N] [--threads N] [--quiet]
//!
//! * Listens on 127.0.0.1:PORT (0 or nothing = a free port) and prints
//!   `READY <port>` on stdout once it accepts connections.
//! * Speaks enough ESMTP for lettre and smtplib: 220 greeting, EHLO/HELO,
//!   MAIL, RCPT, DATA (dot-terminated, body discarded), RSET, NOOP, VRFY, QUIT;
//!   PIPELINING is honoured (replies to a batch of commands go out in one
//!   write). No TLS, no AUTH (both answered 502).
//! * On SIGTERM/SIGINT, or once `--expect N` messages have arrived, prints
//!   `COUNT <messages> RCPTS <recipients> SECONDS <first MAIL to last
//!   message> MSG_PER_S <rate> FIRST_MAIL_UNIX <unix time of the first MAIL,
//!   0.000000 if none>` on stdout and exits 0.
//! * Accepted sockets get TCP_NODELAY.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

const MAX_COMMAND_LINE: usize = 4096;
const EHLO_REPLY: &[u8] = b"250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
250-SIZE 104857600\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n";

struct Stats {
    start: Instant,
    messages: AtomicU64,
    rcpts: AtomicU64,
    /// nanoseconds after `start` of the first MAIL command, +1 (0 = none yet)
    first_mail: AtomicU64,
    /// nanoseconds after `start` of the end of the last message
    last_message: AtomicU64,
    /// Unix time of the first MAIL command, in nanoseconds (0 = none yet)
    first_mail_unix: AtomicU64,
    expect: Option<u64>,
    done: Notify,
}

impl Stats {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn report(&self) -> String {
        let messages = self.messages.load(Ordering::SeqCst);
        let rcpts = self.rcpts.load(Ordering::SeqCst);
        let first = self.first_mail.load(Ordering::SeqCst);
        let last = self.last_message.load(Ordering::SeqCst);
        let seconds = if first == 0 || last < first - 1 {
            0.0
        } else {
            (last - (first - 1)) as f64 / 1e9
        };
        let rate = if seconds > 0.0 {
            messages as f64 / seconds
        } else {
            0.0
        };
        let unix = self.first_mail_unix.load(Ordering::SeqCst);
        format!(
            "COUNT {messages} RCPTS {rcpts} SECONDS {seconds:.3} MSG_PER_S {rate:.0} \
             FIRST_MAIL_UNIX {}.{:06}",
            unix / 1_000_000_000,
            unix % 1_000_000_000 / 1000
        )
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    /// Reading commands. `mail` = a MAIL was accepted, `rcpts` = RCPTs since.
    Command { mail: bool, rcpts: u32 },
    /// Reading the message body; `line_start` = the next byte begins a line.
    Data { line_start: bool, rcpts: u32 },
}

async fn handle(mut sock: TcpStream, stats: Arc<Stats>) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    sock.write_all(b"220 smtp-sink ESMTP ready\r\n").await?;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut state = State::Command {
        mail: false,
        rcpts: 0,
    };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut pos = 0;
        let mut quit = false;
        while pos < buf.len() && !quit {
            match state {
                State::Data { line_start, rcpts } => {
                    let rest = &buf[pos..];
                    match rest.iter().position(|&b| b == b'\n') {
                        Some(i) => {
                            let line = &rest[..=i];
                            if line_start && (line == b".\r\n" || line == b".\n") {
                                let now = stats.now_ns();
                                stats.last_message.fetch_max(now, Ordering::SeqCst);
                                stats.rcpts.fetch_add(rcpts as u64, Ordering::SeqCst);
                                let total = stats.messages.fetch_add(1, Ordering::SeqCst) + 1;
                                out.extend_from_slice(b"250 2.0.0 OK queued\r\n");
                                state = State::Command {
                                    mail: false,
                                    rcpts: 0,
                                };
                                if stats.expect == Some(total) {
                                    // Answer this one before the process goes.
                                    sock.write_all(&out).await?;
                                    out.clear();
                                    stats.done.notify_one();
                                }
                            } else {
                                state = State::Data {
                                    line_start: true,
                                    rcpts,
                                };
                            }
                            pos += i + 1;
                        }
                        None => {
                            // Keep a possible ".\r" at a line start; else discard.
                            if !(line_start && rest.len() <= 2) {
                                pos = buf.len();
                                state = State::Data {
                                    line_start: false,
                                    rcpts,
                                };
                            }
                            break;
                        }
                    }
                }
                State::Command { mail, rcpts } => {
                    let rest = &buf[pos..];
                    let Some(i) = rest.iter().position(|&b| b == b'\n') else {
                        if rest.len() > MAX_COMMAND_LINE {
                            out.extend_from_slice(b"500 5.5.2 line too long\r\n");
                            pos = buf.len();
                        }
                        break;
                    };
                    let line = trim_crlf(&rest[..i]);
                    let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
                    let verb = line[..verb_end].to_ascii_uppercase();
                    match verb.as_slice() {
                        b"EHLO" => {
                            out.extend_from_slice(EHLO_REPLY);
                            state = State::Command {
                                mail: false,
                                rcpts: 0,
                            };
                        }
                        b"HELO" => {
                            out.extend_from_slice(b"250 smtp-sink\r\n");
                            state = State::Command {
                                mail: false,
                                rcpts: 0,
                            };
                        }
                        b"MAIL" => {
                            if mail {
                                out.extend_from_slice(b"503 5.5.1 nested MAIL\r\n");
                            } else {
                                let now = stats.now_ns() + 1;
                                if stats
                                    .first_mail
                                    .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst)
                                    .is_ok()
                                {
                                    let unix = SystemTime::now()
                                        .duration_since(UNIX_EPOCH)
                                        .map_or(0, |d| d.as_nanos() as u64);
                                    stats.first_mail_unix.store(unix, Ordering::SeqCst);
                                }
                                out.extend_from_slice(b"250 2.1.0 OK\r\n");
                                state = State::Command {
                                    mail: true,
                                    rcpts: 0,
                                };
                            }
                        }
                        b"RCPT" => {
                            if mail {
                                out.extend_from_slice(b"250 2.1.5 OK\r\n");
                                state = State::Command {
                                    mail,
                                    rcpts: rcpts + 1,
                                };
                            } else {
                                out.extend_from_slice(b"503 5.5.1 need MAIL first\r\n");
                            }
                        }
                        b"DATA" => {
                            if rcpts > 0 {
                                out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                                state = State::Data {
                                    line_start: true,
                                    rcpts,
                                };
                            } else {
                                out.extend_from_slice(b"503 5.5.1 need RCPT first\r\n");
                            }
                        }
                        b"RSET" => {
                            out.extend_from_slice(b"250 2.0.0 OK\r\n");
                            state = State::Command {
                                mail: false,
                                rcpts: 0,
                            };
                        }
                        b"NOOP" => out.extend_from_slice(b"250 2.0.0 OK\r\n"),
                        b"VRFY" => out.extend_from_slice(b"252 2.0.0 cannot VRFY\r\n"),
                        b"QUIT" => {
                            out.extend_from_slice(b"221 2.0.0 bye\r\n");
                            quit = true;
                        }
                        b"STARTTLS" | b"AUTH" => {
                            out.extend_from_slice(b"502 5.5.1 not implemented\r\n")
                        }
                        _ => out.extend_from_slice(b"500 5.5.2 unknown command\r\n"),
                    }
                    pos += i + 1;
                }
            }
        }
        buf.drain(..pos);
        if !out.is_empty() {
            sock.write_all(&out).await?;
            out.clear();
        }
        if quit {
            let _ = sock.shutdown().await;
            return Ok(());
        }
    }
}

fn trim_crlf(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n' | b' '] = line {
        line = rest;
    }
    line
}

struct Args {
    port: u16,
    expect: Option<u64>,
    threads: usize,
    quiet: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        expect: None,
        threads: 1,
        quiet: false,
    };
    let mut it = std::env::args().skip(1);
    let mut port_seen = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--expect" => {
                let v = it.next().ok_or("--expect needs a number")?;
                let n: u64 = v.parse().map_err(|_| format!("bad --expect {v}"))?;
                args.expect = (n > 0).then_some(n);
            }
            "--threads" => {
                let v = it.next().ok_or("--threads needs a number")?;
                args.threads = v.parse().map_err(|_| format!("bad --threads {v}"))?;
                if args.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            "--quiet" | "-q" => args.quiet = true,
            "-h" | "--help" => {
                return Err("usage: smtp-sink [PORT] [--expect N] [--threads N] [--quiet]".into());
            }
            p if !port_seen && !p.starts_with('-') => {
                args.port = p.parse().map_err(|_| format!("bad port {p}"))?;
                port_seen = true;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

async fn run(args: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    let port = listener.local_addr()?.port();
    let stats = Arc::new(Stats {
        start: Instant::now(),
        messages: AtomicU64::new(0),
        rcpts: AtomicU64::new(0),
        first_mail: AtomicU64::new(0),
        last_message: AtomicU64::new(0),
        first_mail_unix: AtomicU64::new(0),
        expect: args.expect,
        done: Notify::new(),
    });
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "READY {port}")?;
        stdout.flush()?;
    }
    let accept_stats = stats.clone();
    let quiet = args.quiet;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    let s = accept_stats.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(sock, s).await
                            && !quiet
                            && e.kind() != std::io::ErrorKind::ConnectionReset
                        {
                            eprintln!("smtp-sink: connection error: {e}");
                        }
                    });
                }
                Err(e) => {
                    eprintln!("smtp-sink: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });
    tokio::select! {
        _ = sigterm.recv() => {}
        _ = sigint.recv() => {}
        _ = stats.done.notified() => {
            // Let the other connections flush the replies they are writing.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", stats.report())?;
    stdout.flush()?;
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("smtp-sink: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("smtp-sink: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smtp-sink: {e}");
            ExitCode::from(1)
        }
    }
}
