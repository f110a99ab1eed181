//! The public web files (SPEC §8.4) and the `update` / `cancel` commands,
//! through the real binary, a real nginx serving the files and a real
//! headless Chromium running the widget. CAP files are validated with
//! xmllint against the official OASIS CAP 1.2 schema (tests/fixtures).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Project;
use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A value that would run if it ever reached the page as HTML.
const EVIL: &str = "<script>document.body.setAttribute('data-pwned','1')</script> & <img src=x onerror=\"document.body.setAttribute('data-pwned','2')\">";

fn channels(public_url: &str) -> String {
    format!(
        r#"
[zones.argine]
name = "Argine dell'Arno"
polygon = "43.7300,11.0100 43.7400,11.0300 43.7200,11.0400 43.7300,11.0100"
geocode = {{ ISTAT = "048028" }}

[channels.sms]
transport = "outbox"
[channels.email]
transport = "outbox"
from = "Protezione Civile <pc@comune.example.it>"
[channels.banner]
transport = "files"
output_dir = "public"
public_url = "{public_url}"
"#
    )
}

/// A project whose banner is published under `public_url`, with contacts
/// in zones centro and argine, and a drill group.
fn project(public_url: &str) -> Project {
    let p = Project::new(&channels(public_url));
    p.contacts(
        "test.csv",
        &[
            "a1,Anna,+39 333 1000001,anna@example.org,,centro,cittadini,it,".into(),
            "a2,Bruno,+39 333 1000002,bruno@example.org,,argine,cittadini,it,".into(),
            "a3,Carla,+39 333 1000003,carla@example.org,,argine,esercitazione,en,".into(),
        ],
    );
    p
}

fn run_ok(p: &Project, args: &[&str]) -> Value {
    let (code, doc, err) = p.json(args);
    assert_eq!(code, 0, "allerta {args:?} failed:\n{err}");
    doc
}

/// `send`s and returns the new alert id.
fn send(p: &Project, args: &[&str]) -> String {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    let doc = run_ok(p, &all);
    doc["alert"]["id"].as_str().expect("alert id").to_owned()
}

fn read(p: &Project, rel: &str) -> String {
    std::fs::read_to_string(p.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn banner(p: &Project, file: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(&read(p, file)).expect("banner JSON");
    doc["alerts"].as_array().expect("alerts array").clone()
}

fn ids(alerts: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = alerts
        .iter()
        .map(|a| a["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.dedup();
    ids
}

// ---- nginx ------------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `-s quit`: graceful stop through the pid file, workers included.
        let d = self.dir.path();
        let quit = Command::new(nginx_bin())
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .args(["-s", "quit"])
            .stderr(Stdio::null())
            .status();
        if !quit.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Debian's nginx lives in /usr/sbin, which a non-root PATH may lack.
fn nginx_bin() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// Serves `site` at / and `public` at /allerta/ with the shipped snippet
/// (web/nginx-allerta.conf), as a comune's web server would.
fn start_nginx(port: u16, public: &Path) -> Nginx {
    let dir = tempfile::tempdir().expect("nginx dir");
    let d = dir.path();
    let site = d.join("site");
    std::fs::create_dir_all(&site).expect("site dir");
    std::fs::create_dir_all(d.join("logs")).expect("logs dir");
    std::fs::copy(
        Path::new(REPO).join("web/example.html"),
        site.join("example.html"),
    )
    .expect("example page");
    std::fs::write(
        site.join("ssi.shtml"),
        "<!DOCTYPE html><html lang=\"it\"><body><!--#include virtual=\"/allerta/banner.html\" --><p>Sito del Comune</p></body></html>\n",
    )
    .expect("ssi page");
    let snippet = std::fs::read_to_string(Path::new(REPO).join("web/nginx-allerta.conf"))
        .expect("snippet")
        .replace(
            "alias /var/lib/allerta/public/;",
            &format!("alias {}/;", public.display()),
        );
    std::fs::write(d.join("allerta.conf"), snippet).expect("snippet copy");
    let d = d.display();
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/logs/error.log;
events {{ worker_connections 64; }}
http {{
  include /etc/nginx/mime.types;
  access_log {d}/logs/access.log;
  client_body_temp_path {d}/tmp_body; proxy_temp_path {d}/tmp_proxy; fastcgi_temp_path {d}/tmp_fcgi;
  uwsgi_temp_path {d}/tmp_uwsgi; scgi_temp_path {d}/tmp_scgi;
  server {{ listen 127.0.0.1:{port}; root {d}/site; include {d}/allerta.conf; }}
}}
"
        ),
    )
    .expect("nginx.conf");
    // nginx workers do not run as root: everything they serve must be
    // world-readable, as it will be on the comune's server.
    for p in [dir.path(), &site] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let child = Command::new(nginx_bin())
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start nginx (run .ci/run to install it)");
    let nginx = Nginx { child, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    nginx
}

/// GET over HTTP/1.0: (status line, headers + body).
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect nginx");
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("response");
    let status = out.lines().next().unwrap_or_default().to_owned();
    (status, out)
}

// ---- Chromium ---------------------------------------------------------------

/// Headless Chromium with the testbed's flags; the virtual time budget
/// lets the widget's fetch finish before the DOM is dumped.
fn chromium(extra: &[&str], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
        .arg("--virtual-time-budget=5000")
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium (run .ci/run to install it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn dom(url: &str) -> String {
    String::from_utf8_lossy(&chromium(&["--dump-dom"], url).stdout).into_owned()
}

fn screenshot(url: &str, file: &Path) {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).expect("artifact dir");
    }
    chromium(
        &[
            &format!("--screenshot={}", file.display()),
            "--window-size=1200,800",
            "--hide-scrollbars",
        ],
        url,
    );
}

fn artifact(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        Path::new(REPO).join(target)
    };
    target.join("test-artifacts").join(name)
}

// ---- CAP / Atom ---------------------------------------------------------------

fn xmllint_cap(file: &Path) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(Path::new(REPO).join("tests/fixtures/CAP-v1.2.xsd"))
        .arg(file)
        .output()
        .expect("run xmllint (run .ci/run to install libxml2-utils)");
    assert!(
        out.status.success(),
        "{} is not valid CAP 1.2:\n{}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

/// The text of every `<name>` element (first level of nesting is enough for
/// our checks).
fn xml_texts(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split(&close).next())
        .map(str::to_owned)
        .collect()
}

/// An Atom feed as RFC 4287 requires it, read with a real XML parser:
/// root `feed` in the Atom namespace with id, title, updated and author;
/// every entry with id, title, updated (RFC 3339) and an `alternate` link
/// of type `application/cap+xml`. Returns each entry's (id, CAP href).
fn parse_atom(xml: &str) -> Vec<(String, String)> {
    use quick_xml::events::{BytesStart, Event};
    let attr = |e: &BytesStart<'_>, name: &str| -> Option<String> {
        e.try_get_attribute(name)
            .expect("attribute")
            .map(|a| a.value.into_owned())
    };
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut seen: Vec<Vec<String>> = Vec::new(); // children seen, per open element
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event().expect("feed.atom is well-formed XML") {
            Event::Start(e) => {
                let name = e.name().as_ref().to_owned();
                if path.is_empty() {
                    assert_eq!(name, "feed", "root element");
                    assert_eq!(
                        attr(&e, "xmlns").as_deref(),
                        Some("http://www.w3.org/2005/Atom")
                    );
                }
                if name == "entry" {
                    entries.push(Default::default());
                }
                if let Some(parent) = seen.last_mut() {
                    parent.push(name.clone());
                }
                path.push(name);
                seen.push(Vec::new());
                text.clear();
            }
            Event::Empty(e) => {
                let name = e.name().as_ref().to_owned();
                if name == "link"
                    && path.last().map(String::as_str) == Some("entry")
                    && attr(&e, "rel").as_deref() == Some("alternate")
                {
                    assert_eq!(attr(&e, "type").as_deref(), Some("application/cap+xml"));
                    if let Some(last) = entries.last_mut() {
                        last.1 = attr(&e, "href").expect("href");
                    }
                    if let Some(parent) = seen.last_mut() {
                        parent.push("link".into());
                    }
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(_) => text.push('&'),
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let children = seen.pop().unwrap_or_default();
                let parent = path.last().cloned().unwrap_or_default();
                if name == "updated" {
                    chrono::DateTime::parse_from_rfc3339(text.trim())
                        .unwrap_or_else(|e| panic!("{parent} updated `{text}`: {e}"));
                }
                if name == "id"
                    && parent == "entry"
                    && let Some(last) = entries.last_mut()
                {
                    last.0 = text.clone();
                }
                let required: &[&str] = match name.as_str() {
                    "feed" => &["id", "title", "updated", "author"],
                    "entry" => &["id", "title", "updated", "link"],
                    _ => &[],
                };
                for r in required {
                    assert!(children.iter().any(|c| c == r), "<{name}> without <{r}>");
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    entries
}

// ---- tests ----------------------------------------------------------------------

#[test]
fn the_widget_shows_the_alert_as_text_in_a_real_browser_and_hides_it_after_cancel() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let p = project(&format!("{base}/allerta/"));
    std::fs::set_permissions(p.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let id = send(
        &p,
        &[
            "allerta-meteo",
            "--var",
            "livello=rosso",
            "--var",
            "rischio=idraulico",
            "--var",
            &format!("dalle={EVIL}"),
            "--all",
            "--yes",
        ],
    );
    let _nginx = start_nginx(port, &p.path("public"));

    let page = dom(&format!("{base}/example.html"));
    assert!(
        page.contains("role=\"alert\""),
        "no role=alert banner:\n{page}"
    );
    assert!(
        page.contains("Allerta meteo codice rosso per rischio idraulico"),
        "{page}"
    );
    assert!(
        page.contains("dalle &lt;script&gt;document.body.setAttribute('data-pwned','1')&lt;/script&gt; &amp; &lt;img src=x"),
        "the variable is not shown as text:\n{page}"
    );
    assert!(
        !page.contains("data-pwned=\""),
        "injected markup ran:\n{page}"
    );
    assert!(
        !page.contains("<img src=\"x\""),
        "injected markup became an element:\n{page}"
    );
    assert!(
        page.contains(&format!("{base}/allerta/cap/{id}.xml")),
        "no link to the CAP file"
    );
    let shot = artifact("banner.png");
    let _ = std::fs::remove_file(&shot);
    screenshot(&format!("{base}/example.html"), &shot);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot is not a real PNG"
    );

    // Without JavaScript: the SSI fragment, escaped.
    let (status, ssi) = http_get(port, "/ssi.shtml");
    assert!(status.contains("200"), "{status}");
    assert!(ssi.contains("role=\"alert\""), "{ssi}");
    assert!(
        ssi.contains("&lt;script&gt;document.body") && !ssi.contains("<script>document"),
        "{ssi}"
    );
    // Public files are world-readable, as nginx workers need.
    for f in [
        "banner.json",
        "banner.html",
        "feed.atom",
        "allerta-banner.js",
        &format!("cap/{id}.xml"),
    ] {
        let mode = std::fs::metadata(p.path(&format!("public/{f}")))
            .expect(f)
            .permissions()
            .mode();
        assert_eq!(mode & 0o044, 0o044, "{f} is not world-readable ({mode:o})");
    }

    run_ok(&p, &["cancel", &id, "--yes"]);
    let page = dom(&format!("{base}/example.html"));
    assert!(
        !page.contains("role=\"alert\""),
        "banner still shown after cancel:\n{page}"
    );
    let (_, ssi) = http_get(port, "/ssi.shtml");
    assert!(
        !ssi.contains("role=\"alert\""),
        "SSI fragment still shows it:\n{ssi}"
    );
    assert!(
        banner(&p, "public/banner.json").is_empty(),
        "banner.json must keep existing, empty"
    );
}

#[test]
fn an_expired_alert_is_hidden_by_the_widget_and_leaves_the_files_at_the_next_command() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let p = project(&format!("{base}/allerta/"));
    std::fs::set_permissions(p.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let started = Instant::now();
    let id = send(
        &p,
        &[
            "interruzione-acqua",
            "--var",
            "zona=via Roma",
            "--var",
            "quando=oggi",
            "--zone",
            "centro",
            "--expires",
            "10s",
            "--yes",
        ],
    );
    assert_eq!(
        ids(&banner(&p, "public/banner.json")),
        [id.as_str()],
        "published while valid"
    );
    let _nginx = start_nginx(port, &p.path("public"));
    if let Some(left) = Duration::from_secs(11).checked_sub(started.elapsed()) {
        std::thread::sleep(left);
    }

    // No command ran since it expired: the file still lists it, and the
    // widget hides it by itself.
    assert_eq!(ids(&banner(&p, "public/banner.json")), [id.as_str()]);
    let page = dom(&format!("{base}/example.html"));
    assert!(
        !page.contains("role=\"alert\""),
        "expired alert still shown:\n{page}"
    );

    // A read-only command leaves the public files alone (SPEC §13); the
    // next command that writes (here the resume timer's) sweeps it out of
    // the banner and the feed.
    let (code, _, err) = p.run(&["list"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(ids(&banner(&p, "public/banner.json")), [id.as_str()]);
    let (code, _, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{err}");
    assert!(banner(&p, "public/banner.json").is_empty());
    assert!(!read(&p, "public/banner.html").contains(&id));
    assert!(parse_atom(&read(&p, "public/feed.atom")).is_empty());
    // The CAP file of an ended alert stays.
    assert!(p.path(&format!("public/cap/{id}.xml")).exists());
}

#[test]
fn read_only_commands_never_write_the_public_files() {
    let p = project("https://www.comune.example.it/allerta/");
    let id = send(
        &p,
        &[
            "interruzione-acqua",
            "--var",
            "zona=via Roma",
            "--var",
            "quando=oggi",
            "--zone",
            "centro",
            "--yes",
        ],
    );
    // As if the web directory were owned by someone else: nothing may be
    // created there, not even the lock file or cap/.
    std::fs::remove_dir_all(p.path("public")).expect("remove public");
    for args in [
        vec!["status"],
        vec!["status", &id, "--deliveries"],
        vec!["list"],
        vec!["export", &id, "--format", "csv"],
        vec![
            "preview",
            "interruzione-acqua",
            "--var",
            "zona=x",
            "--var",
            "quando=y",
        ],
        vec!["templates", "list"],
        vec!["contacts", "list"],
        vec!["contacts", "check"],
    ] {
        let (code, _, err) = p.run(&args);
        assert_eq!(code, 0, "allerta {args:?}: {err}");
        assert!(
            !p.path("public").exists(),
            "allerta {args:?} wrote the public directory"
        );
    }
    // A command that writes publishes again.
    let (code, _, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(ids(&banner(&p, "public/banner.json")), [id.as_str()]);
}

#[test]
fn every_cap_message_validates_against_the_official_cap_1_2_schema() {
    let p = project("https://www.comune.example.it/allerta/");
    let alert = send(
        &p,
        &[
            "allerta-meteo",
            "--var",
            "livello=arancione",
            "--var",
            "rischio=idraulico",
            "--var",
            "dalle=ore 14 & oltre <subito>",
            "--zone",
            "argine",
            "--yes",
        ],
    );
    let update = run_ok(
        &p,
        &[
            "update",
            &alert,
            "allerta-meteo",
            "--var",
            "livello=rosso",
            "--var",
            "rischio=idraulico",
            "--var",
            "dalle=ora",
            "--yes",
        ],
    )["alert"]["id"]
        .as_str()
        .expect("update id")
        .to_owned();
    let drill = send(&p, &["esercitazione", "--drill"]);
    let cancel_doc = run_ok(&p, &["cancel", &update, "--yes"]);
    let cancel = cancel_doc["alert"]["id"]
        .as_str()
        .expect("cancel id")
        .to_owned();

    let mut kinds = Vec::new();
    for id in [&alert, &update, &drill, &cancel] {
        let file = p.path(&format!("public/cap/{id}.xml"));
        xmllint_cap(&file);
        let xml = std::fs::read_to_string(&file).expect("cap file");
        assert_eq!(xml_texts(&xml, "identifier"), [id.as_str()]);
        assert_eq!(xml_texts(&xml, "sender"), ["pc@comune.example.it"]);
        for t in xml_texts(&xml, "sent")
            .iter()
            .chain(&xml_texts(&xml, "expires"))
        {
            assert!(
                chrono::DateTime::parse_from_rfc3339(t).is_ok()
                    && !t.ends_with('Z')
                    && !t.contains('.'),
                "CAP time `{t}` must carry an offset, no Z, no fraction"
            );
        }
        kinds.push((
            xml_texts(&xml, "status")[0].clone(),
            xml_texts(&xml, "msgType")[0].clone(),
        ));
        if id == &update || id == &cancel {
            let refs = xml_texts(&xml, "references");
            assert_eq!(refs.len(), 1, "{xml}");
            assert!(
                refs[0].contains(&format!("pc@comune.example.it,{alert},")),
                "{xml}"
            );
        }
        if id != &drill {
            // A zone audience: the zone's name, polygon and geocode.
            assert!(
                xml.contains("<areaDesc>Argine dell'Arno</areaDesc>"),
                "{xml}"
            );
            assert!(
                xml.contains("<polygon>43.7300,11.0100 43.7400,11.0300"),
                "{xml}"
            );
            assert!(
                xml.contains("<valueName>ISTAT</valueName>")
                    && xml.contains("<value>048028</value>"),
                "{xml}"
            );
        }
    }
    assert_eq!(
        kinds,
        [
            ("Actual".to_owned(), "Alert".to_owned()),
            ("Actual".into(), "Update".into()),
            ("Exercise".into(), "Alert".into()),
            ("Actual".into(), "Cancel".into()),
        ]
    );
    let xml = read(&p, &format!("public/cap/{alert}.xml"));
    assert!(
        xml.contains("ore 14 &amp; oltre &lt;subito&gt;"),
        "variables are escaped in CAP:\n{xml}"
    );
    assert!(
        xml.contains("<language>it</language>") && xml.contains("<language>en</language>"),
        "one info per language"
    );
    let cancel_xml = read(&p, &format!("public/cap/{cancel}.xml"));
    assert!(
        xml_texts(&cancel_xml, "references")[0].contains(&format!(",{update},")),
        "the Cancel references the update it cancels"
    );
    // The cancelled alert's state; its chain left the banner.
    assert_eq!(
        p.sql(&format!("SELECT state FROM alerts WHERE id = '{update}'")),
        ["cancelled"]
    );
    assert!(banner(&p, "public/banner.json").is_empty());
}

#[test]
fn the_feed_is_atom_and_lists_only_live_cap_messages() {
    let p = project("https://www.comune.example.it/allerta/");
    let a = send(
        &p,
        &[
            "chiusura-scuole",
            "--var",
            "data=domani",
            "--var",
            "motivo=neve",
            "--all",
            "--yes",
        ],
    );
    let b = send(
        &p,
        &[
            "allerta-meteo",
            "--var",
            "livello=giallo",
            "--var",
            "rischio=vento",
            "--var",
            "dalle=ora",
            "--zone",
            "centro",
            "--yes",
        ],
    );
    let entries = parse_atom(&read(&p, "public/feed.atom"));
    let hrefs: Vec<&str> = entries.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    for id in [&a, &b] {
        let href = format!("https://www.comune.example.it/allerta/cap/{id}.xml");
        assert!(hrefs.contains(&href.as_str()), "{href} not in {hrefs:?}");
        assert!(p.path(&format!("public/cap/{id}.xml")).exists());
    }
    // banner.json: most severe first (the school closure is Severe? it is
    // whatever its template says; compare with the CAP ranks).
    let list = banner(&p, "public/banner.json");
    let rank = |s: &str| {
        ["Unknown", "Minor", "Moderate", "Severe", "Extreme"]
            .iter()
            .position(|x| *x == s)
    };
    let ranks: Vec<_> = list
        .iter()
        .map(|e| rank(e["severity"].as_str().unwrap_or_default()))
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] >= w[1]),
        "not most severe first: {ranks:?}"
    );

    // Nothing changed: another command leaves the files alone.
    let before = read(&p, "public/banner.json");
    std::thread::sleep(Duration::from_millis(1100)); // `generated_at` has 1 s resolution
    run_ok(&p, &["status"]);
    assert_eq!(
        read(&p, "public/banner.json"),
        before,
        "rewritten although nothing changed"
    );

    let update = run_ok(
        &p,
        &[
            "update",
            &b,
            "allerta-meteo",
            "--var",
            "livello=arancione",
            "--var",
            "rischio=vento",
            "--var",
            "dalle=ora",
            "--yes",
        ],
    )["alert"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let hrefs: Vec<String> = parse_atom(&read(&p, "public/feed.atom"))
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert!(
        hrefs.iter().any(|h| h.contains(&update)),
        "the update is listed"
    );
    assert!(
        !hrefs.iter().any(|h| h.contains(&b)),
        "the updated alert left the feed"
    );

    let cancel = run_ok(&p, &["cancel", &a, "--yes"])["alert"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let hrefs: Vec<String> = parse_atom(&read(&p, "public/feed.atom"))
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert!(
        !hrefs.iter().any(|h| h.contains(&a)),
        "the cancelled alert left the feed"
    );
    assert!(
        hrefs.iter().any(|h| h.contains(&cancel)),
        "the CAP Cancel is announced in the feed"
    );
    assert_eq!(
        ids(&banner(&p, "public/banner.json")),
        [update],
        "a Cancel is never a banner"
    );
}

#[test]
fn a_drill_never_reaches_the_public_files() {
    let p = project("https://www.comune.example.it/allerta/");
    let real = send(
        &p,
        &[
            "interruzione-viabilita",
            "--var",
            "strada=via Roma",
            "--var",
            "motivo=frana",
            "--zone",
            "centro",
            "--yes",
        ],
    );
    let drill = send(&p, &["esercitazione", "--drill"]);
    assert_eq!(
        ids(&banner(&p, "public/drill-banner.json")),
        [drill.as_str()]
    );
    let d = &banner(&p, "public/drill-banner.json")[0];
    assert_eq!(d["status"], "Exercise");
    assert!(
        d["headline"]
            .as_str()
            .unwrap_or_default()
            .starts_with("[ESERCITAZIONE]")
    );
    assert!(read(&p, "public/drill-banner.html").contains("ESERCITAZIONE"));
    for f in ["banner.json", "banner.html", "feed.atom"] {
        let text = read(&p, &format!("public/{f}"));
        assert!(text.contains(&real), "{f} lost the real alert");
        assert!(
            !text.contains(&drill) && !text.contains("ESERCITAZIONE"),
            "drill in public {f}:\n{text}"
        );
    }
    assert_eq!(ids(&banner(&p, "public/banner.json")), [real.as_str()]);
    // The ledger agrees: the drill's banner delivery went to "drill".
    assert_eq!(
        p.sql(&format!(
            "SELECT address FROM deliveries WHERE alert_id = '{drill}' AND channel = 'banner'"
        )),
        ["drill"]
    );
    // Cancelling the drill: the revocation is a drill too (one prefix, not
    // two), and the drill banner empties without touching the public one.
    let doc = run_ok(&p, &["cancel", &drill]);
    assert_eq!(doc["alert"]["status"], "Exercise");
    let headline = doc["alert"]["headline"].as_str().unwrap_or_default();
    assert_eq!(headline.matches("[ESERCITAZIONE]").count(), 1, "{headline}");
    assert!(banner(&p, "public/drill-banner.json").is_empty());
    assert_eq!(ids(&banner(&p, "public/banner.json")), [real.as_str()]);
    let cancel = doc["alert"]["id"].as_str().unwrap_or_default();
    xmllint_cap(&p.path(&format!("public/cap/{cancel}.xml")));
    assert!(
        !read(&p, "public/feed.atom").contains(cancel),
        "a drill Cancel is not in the public feed"
    );
}

#[test]
fn update_reaches_the_same_audience_on_every_channel_and_replaces_the_banner() {
    let p = project("https://www.comune.example.it/allerta/");
    let original = send(
        &p,
        &[
            "interruzione-acqua",
            "--var",
            "zona=via Roma",
            "--var",
            "quando=oggi",
            "--zone",
            "argine",
            "--yes",
        ],
    );
    // A real alert: no terminal and no --yes is refused (exit 4), nothing sent.
    let (code, _, err) = p.run(&[
        "update",
        &original,
        "interruzione-acqua",
        "--var",
        "zona=via Roma",
        "--var",
        "quando=domani",
    ]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(p.sql("SELECT COUNT(*) FROM alerts"), ["1"]);
    let doc = run_ok(
        &p,
        &[
            "update",
            &original,
            "interruzione-acqua",
            "--var",
            "zona=via Roma",
            "--var",
            "quando=oggi e domani",
            "--var",
            "autobotte=piazza",
            "--yes",
        ],
    );
    let update = doc["alert"]["id"].as_str().expect("id").to_owned();
    assert_eq!(doc["alert"]["msg_type"], "Update");
    assert_eq!(doc["alert"]["references"], serde_json::json!([original]));
    for ch in ["sms", "email"] {
        let to = |id: &str| {
            let mut v: Vec<String> = p
                .outbox(ch)
                .into_iter()
                .filter(|l| l["alert_id"] == id)
                .map(|l| l["to"].as_str().unwrap_or_default().to_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(to(&update), to(&original), "{ch}: same audience");
        assert_eq!(
            to(&update).len(),
            2,
            "{ch}: the two contacts in zone argine"
        );
        let langs: Vec<_> = p
            .outbox(ch)
            .into_iter()
            .filter(|l| l["alert_id"] == update.as_str())
            .map(|l| l["language"].clone())
            .collect();
        assert!(
            langs.contains(&Value::from("en")),
            "{ch}: recipient languages are kept"
        );
    }
    let list = banner(&p, "public/banner.json");
    assert_eq!(
        ids(&list),
        [update.as_str()],
        "the update replaced the original"
    );
    assert_eq!(list[0]["msg_type"], "Update");
    // Cancelling by the original's id acts on the whole thread (SPEC §11):
    // the officer need not find the update's id at 3 a.m.
    let (code, _, err) = p.run(&["cancel", &original, "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&update),
        "says which message is acted on: {err}"
    );
    assert_eq!(
        p.sql(&format!(
            "SELECT state FROM alerts WHERE id IN ('{original}', '{update}') ORDER BY rowid"
        )),
        ["cancelled", "cancelled"]
    );
}

#[test]
fn cancel_stops_undelivered_messages_and_sends_the_revocation_to_those_reached() {
    let p = project("https://www.comune.example.it/allerta/");
    let id = send(
        &p,
        &[
            "evacuazione",
            "--var",
            "zona=via Roma",
            "--var",
            "punto_raccolta=piazza",
            "--var",
            "motivo=frana",
            "--all",
            "--yes",
        ],
    );
    // As after a crash mid-send: the SMS had not left yet.
    let conn = rusqlite::Connection::open(p.path("allerta.db")).expect("db");
    let pending = conn
        .execute(&format!("UPDATE deliveries SET state = 'pending' WHERE alert_id = '{id}' AND channel = 'sms'"), [])
        .expect("update");
    assert_eq!(pending, 3);
    // …and one email was in flight (outcome unknown): it counts as reached.
    conn.execute(
        &format!("UPDATE deliveries SET state = 'sending' WHERE id = (SELECT MIN(id) FROM deliveries WHERE alert_id = '{id}' AND channel = 'email')"),
        [],
    )
    .expect("update");
    drop(conn);
    let headline = p.sql(&format!("SELECT headline FROM alerts WHERE id = '{id}'"))[0].clone();

    // A real alert: no terminal and no --yes is refused, nothing changes.
    let (code, _, err) = p.run(&["cancel", &id]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(
        p.sql(&format!("SELECT state FROM alerts WHERE id = '{id}'")),
        ["settled"]
    );

    let doc = run_ok(&p, &["cancel", &id, "--yes"]);
    let cancel = doc["alert"]["id"].as_str().expect("id").to_owned();
    assert_eq!(doc["alert"]["msg_type"], "Cancel");
    assert_eq!(
        p.sql(&format!("SELECT state FROM alerts WHERE id = '{id}'")),
        ["cancelled"]
    );
    assert_eq!(
        p.sql(&format!(
            "SELECT state FROM deliveries WHERE alert_id = '{id}' AND channel = 'sms'"
        )),
        ["skipped", "skipped", "skipped"]
    );
    assert!(
        doc["channels"].get("sms").is_none(),
        "no revocation to those never reached: {doc}"
    );
    let revocations: Vec<Value> = p
        .outbox("email")
        .into_iter()
        .filter(|l| l["alert_id"] == cancel.as_str())
        .collect();
    assert_eq!(
        revocations.len(),
        3,
        "every reached email gets the revocation"
    );
    let it = revocations
        .iter()
        .find(|l| l["language"] == "it")
        .expect("an Italian one");
    assert!(
        it["text"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("Non è più in vigore: {headline}")),
        "{it}"
    );
    assert_eq!(doc["channels"]["banner"]["delivered"], 1);
    assert!(banner(&p, "public/banner.json").is_empty());
    // Cancelling again is refused (exit 2).
    let (code, _, err) = p.run(&["cancel", &id, "--yes"]);
    assert_eq!(code, 2, "{err}");
}
