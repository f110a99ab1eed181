//! A real Kannel for the SMS tests: bearerbox + smsbox started with a config
//! generated into a temp dir, on free loopback ports, and either the fake
//! SMSC (`fakesmsc`, which records every message it gets) or an `smsc = http`
//! route to the test operator (`tests/servers/sms_operator.py`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "allerta";
pub const PASSWORD: &str = "kannel-pw";

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A minimal HTTP/1.0 GET on loopback: (status, body), None if unreachable.
pub fn http_get(port: u16, path_and_query: &str) -> Option<(u16, String)> {
    http_get_with(port, path_and_query, "")
}

/// `http_get` with extra header lines (each ending in `\r\n`).
pub fn http_get_with(port: u16, path_and_query: &str, headers: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

pub enum Route {
    /// `fakesmsc` receives everything.
    Fake,
    /// `smsc = http` to the test operator on this port; the operator calls
    /// back Kannel on `callback_port`.
    Operator {
        operator_port: u16,
        callback_port: u16,
    },
}

pub struct Ports {
    pub admin: u16,
    pub smsbox: u16,
    pub sendsms: u16,
    pub fake: u16,
}

impl Ports {
    pub fn pick() -> Self {
        Self {
            admin: free_port(),
            smsbox: free_port(),
            sendsms: free_port(),
            fake: free_port(),
        }
    }
}

pub struct Kannel {
    pub dir: tempfile::TempDir,
    pub ports: Ports,
    children: Vec<Child>,
    fake_log: PathBuf,
}

impl Drop for Kannel {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(cmd: &mut Command, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e} (run .ci/run to install kannel)"))
}

impl Kannel {
    pub fn sendsms_url(&self) -> String {
        format!("http://127.0.0.1:{}/cgi-bin/sendsms", self.ports.sendsms)
    }

    pub fn start(route: Route) -> Self {
        Self::start_on(Ports::pick(), route)
    }

    /// Starts on the given ports (a test that wants the gateway to come up
    /// later picks them first).
    pub fn start_on(ports: Ports, route: Route) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let smsc = match &route {
            Route::Fake => format!(
                "group = smsc\nsmsc = fake\nsmsc-id = fake\nport = {}\nconnect-allow-ip = 127.0.0.1\n",
                ports.fake
            ),
            Route::Operator {
                operator_port,
                callback_port,
            } => format!(
                "group = smsc\nsmsc = http\nsmsc-id = operator\nsystem-type = generic\nport = {callback_port}\n\
                 connect-allow-ip = 127.0.0.1\nsend-url = \"http://127.0.0.1:{operator_port}/send?to=%p&text=%b\"\n\
                 generic-foreign-id-regex = \"id=([0-9]+)\"\nstatus-success-regex = \"^OK\"\nstatus-permfail-regex = \"^ERROR\"\n"
            ),
        };
        let conf = format!(
            "group = core\nadmin-port = {admin}\nadmin-interface = 127.0.0.1\nadmin-password = adm\n\
             smsbox-port = {smsbox}\nbox-allow-ip = 127.0.0.1\ndlr-storage = internal\n\
             log-file = \"{d}/bearerbox.log\"\nlog-level = 0\n\n{smsc}\n\
             group = smsbox\nbearerbox-host = 127.0.0.1\nbearerbox-port = {smsbox}\n\
             sendsms-port = {sendsms}\nsendsms-interface = 127.0.0.1\nlog-file = \"{d}/smsbox.log\"\nlog-level = 0\n\n\
             group = sendsms-user\nusername = {USER}\npassword = {PASSWORD}\nconcatenation = true\nmax-messages = 10\n\
             black-list-regex = \"^[+]39337\"\n",
            admin = ports.admin,
            smsbox = ports.smsbox,
            sendsms = ports.sendsms,
            d = d.display(),
        );
        let conf_path = d.join("kannel.conf");
        std::fs::write(&conf_path, conf).expect("write kannel.conf");
        let mut children = Vec::new();
        children.push(spawn(
            Command::new("/usr/sbin/bearerbox").arg(&conf_path),
            &d.join("bearerbox.out"),
        ));
        wait_until(Duration::from_secs(20), "bearerbox admin port", || {
            http_get(ports.admin, "/status.txt?password=adm").is_some()
        });
        children.push(spawn(
            Command::new("/usr/sbin/smsbox").arg(&conf_path),
            &d.join("smsbox.out"),
        ));
        let fake_log = d.join("fakesmsc.out");
        if let Route::Fake = route {
            children.push(spawn(
                Command::new("/usr/lib/kannel/test/fakesmsc").args([
                    "-H",
                    "127.0.0.1",
                    "-r",
                    &ports.fake.to_string(),
                    "-m",
                    "0",
                    "100 200 text x",
                ]),
                &fake_log,
            ));
        }
        let kannel = Self {
            dir,
            ports,
            children,
            fake_log,
        };
        wait_until(
            Duration::from_secs(20),
            "Kannel SMSC online and smsbox connected",
            || {
                let status = http_get(kannel.ports.admin, "/status.txt?password=adm")
                    .map(|(_, b)| b)
                    .unwrap_or_default();
                status.contains("online")
                    && status.contains("smsbox:")
                    && TcpStream::connect(("127.0.0.1", kannel.ports.sendsms)).is_ok()
            },
        );
        kannel
    }

    /// Messages fakesmsc received, concatenated parts joined: (to, text).
    pub fn received(&self) -> Vec<(String, String)> {
        parse_fakesmsc(&std::fs::read_to_string(&self.fake_log).unwrap_or_default()).0
    }

    /// fakesmsc's raw output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.fake_log).unwrap_or_default()
    }

    /// Every part as received (to, UTF-16 units or UTF-8 bytes, decoded
    /// strictly: `None` when a part alone is not valid text).
    pub fn raw_parts(&self) -> Vec<(String, Option<String>)> {
        parse_fakesmsc(&std::fs::read_to_string(&self.fake_log).unwrap_or_default()).1
    }
}

pub fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn url_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    out
}

fn decode_part(bytes: &[u8]) -> Option<String> {
    if bytes.contains(&0) || std::str::from_utf8(bytes).is_err() {
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).ok()
    } else {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

/// fakesmsc prints `Got message N: <from to TYPE rest>`: `text` (rest is
/// the text), `ucs-2` (rest is URL-encoded UTF-16BE), `udh UDH data DATA`
/// (a concatenated part; DATA is UTF-8 for GSM-7, UTF-16BE for UCS-2).
#[allow(clippy::type_complexity)]
fn parse_fakesmsc(log: &str) -> (Vec<(String, String)>, Vec<(String, Option<String>)>) {
    let mut whole = Vec::new();
    let mut parts: Vec<(String, Option<String>)> = Vec::new();
    // (to, ref) → (total, [(seq, text)])
    let mut pending: std::collections::BTreeMap<(String, u8), (u8, Vec<(u8, String)>)> =
        Default::default();
    for line in log.lines() {
        let Some(rest) = line.split_once("Got message ").map(|(_, r)| r) else {
            continue;
        };
        let Some(body) = rest.split_once(": <").map(|(_, b)| b.trim_end_matches('>')) else {
            continue;
        };
        let mut it = body.splitn(4, ' ');
        let (_from, to, kind, rest) = (
            it.next().unwrap_or(""),
            it.next().unwrap_or("").to_owned(),
            it.next().unwrap_or(""),
            it.next().unwrap_or(""),
        );
        match kind {
            "text" => {
                parts.push((to.clone(), Some(rest.to_owned())));
                whole.push((to, rest.to_owned()));
            }
            "ucs-2" => {
                let t = decode_part(&url_decode(rest));
                parts.push((to.clone(), t.clone()));
                whole.push((to, t.unwrap_or_default()));
            }
            "udh" => {
                let mut f = rest.splitn(3, ' ');
                let udh = url_decode(f.next().unwrap_or(""));
                let _data_kind = f.next();
                let t = decode_part(&url_decode(f.next().unwrap_or("")));
                parts.push((to.clone(), t.clone()));
                if udh.len() >= 6 {
                    let entry = pending
                        .entry((to.clone(), udh[3]))
                        .or_insert((udh[4], Vec::new()));
                    entry.1.push((udh[5], t.unwrap_or_default()));
                    if entry.1.len() == entry.0 as usize {
                        let (_, mut ps) = pending.remove(&(to.clone(), udh[3])).unwrap_or_default();
                        ps.sort_by_key(|p| p.0);
                        whole.push((to, ps.into_iter().map(|p| p.1).collect()));
                    }
                }
            }
            _ => {}
        }
    }
    (whole, parts)
}
