//! The officer console (SPEC §17) over plain HTTP.

use super::*;

// ---------------------------------------------------------------------
// The officer console (`serve` with `[console]`), over plain HTTP
// ---------------------------------------------------------------------

/// `[console.users]` with `name`'s hash from `allerta console passwd`.
pub fn console_users(name: &str, password: &str) -> String {
    format!("[console.users]\n{}", console_user(name, password))
}

/// One `[console.users]` line from `allerta console passwd`.
pub fn console_user(name: &str, password: &str) -> String {
    let probe = Project::new("");
    let mut child = probe
        .cmd()
        .args(["console", "passwd", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("allerta console passwd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A logged-in console session over plain HTTP (no redirects followed).
pub struct Console {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    cookie: String,
}

pub fn cookie_of(r: &reqwest::Response) -> Option<String> {
    let header = r.headers().get("set-cookie")?.to_str().ok()?;
    Some(header.split(';').next()?.trim().to_owned())
}

impl Console {
    fn login(port: u16, user: &str, password: &str) -> Self {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{port}");
        let cookie = rt.block_on(async {
            let form = http
                .get(format!("{base}/console/login"))
                .send()
                .await
                .expect("GET login");
            let anonymous = cookie_of(&form).expect("a session cookie");
            let html = form.text().await.expect("login page");
            let marker = "name=\"csrf\" value=\"";
            let at = html.find(marker).expect("a csrf field") + marker.len();
            let csrf = html[at..at + 64].to_owned();
            let r = http
                .post(format!("{base}/console/login"))
                .header("cookie", anonymous)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("user", user),
                    ("password", password),
                ])
                .send()
                .await
                .expect("POST login");
            assert_eq!(r.status().as_u16(), 303, "login");
            cookie_of(&r).expect("the logged-in session")
        });
        Self {
            rt,
            http,
            base,
            cookie,
        }
    }

    /// POST the CSRF token of `form_page` to `path`: the status and body.
    fn post(&self, form_page: &str, path: &str) -> (u16, String) {
        let (_, html) = self.get(form_page);
        let marker = "name=\"csrf\" value=\"";
        let at = html.find(marker).expect("a csrf field") + marker.len();
        let csrf = html[at..at + 64].to_owned();
        self.rt.block_on(async {
            let r = self
                .http
                .post(format!("{}{path}", self.base))
                .header("cookie", &self.cookie)
                .form(&[("csrf", csrf.as_str())])
                .send()
                .await
                .expect("POST");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    }

    /// GET `path`: the status and the body.
    fn get(&self, path: &str) -> (u16, String) {
        self.rt.block_on(async {
            let r = self
                .http
                .get(format!("{}{path}", self.base))
                .header("cookie", &self.cookie)
                .send()
                .await
                .expect("GET");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    }
}

pub fn the_console_shows_the_alert_who_it_did_not_reach_and_the_report(backend: &Backend) {
    let users = console_users("root", "segreto-root");
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("gateway.jsonl");
    let p = messaggio_project(&format!("{}\n[console]\n{users}\n", form_config()), backend);
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    p.write(
        "allerta.toml",
        &config.replace(
            "name = \"Montelupo centro\"",
            "name = \"Montelupo centro\"\npolygon = \"43.73,11.01 43.74,11.03 43.72,11.04 43.73,11.01\"",
        ),
    );
    let mut rows = support::phones("+39333", 2);
    rows.extend(support::phones("+39339", 1)); // an invalid number: fails at once
    rows.push("fisso-1,Signora Fissa,055 1234567,,,centro,cittadini,it,".into());
    p.contacts("cittadini.csv", &rows);
    let serve = support::Serve::start(&p, &SMS_ENV);
    let gw = form_gateway(&log, None);
    point_at_gateway(&p, &format!("http://127.0.0.1:{}", gw.port));
    let send = [
        "send",
        "messaggio",
        "--var",
        "testo=Prova di allerta",
        "--all",
        "--yes",
    ];
    let (code, doc, err) = support::json_env(&p, &SMS_ENV, &send);
    assert_eq!(code, 3, "{err}\n{doc}");
    let id = id_of(&doc);

    let console = Console::login(serve.port, "root", "segreto-root");
    let (code, home) = console.get("/console/");
    assert_eq!(code, 200, "{home}");
    assert!(home.contains(&id), "{home}");
    let (code, page) = console.get(&format!("/console/alerts/{id}"));
    assert_eq!(code, 200, "{page}");
    // The map's label for centro: of the three people an SMS was planned
    // for, two were reached (the landline has no delivery at all).
    assert!(page.contains("<svg"), "the zones' map: {page}");
    assert!(page.contains("2 / 3 reached"), "{page}");
    // The live counts the page polls.
    let (code, live) = console.get(&format!("/console/alerts/{id}/live.json"));
    assert_eq!(code, 200, "{live}");
    let live: Value = serde_json::from_str(&live).expect("live.json");
    assert_eq!(live["state"], "settled", "{live}");
    assert_eq!(live["channels"]["sms"]["total"], 3, "{live}");
    assert_eq!(live["channels"]["sms"]["failed"], 1, "{live}");
    assert_eq!(live["zones"]["centro"]["reached"], 2, "{live}");
    // Who to call: the invalid number and the landline, nobody reached.
    let (code, csv) = console.get(&format!("/console/alerts/{id}/not-reached.csv"));
    assert_eq!(code, 200, "{csv}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let unreached: Vec<String> = reader
        .records()
        .map(|r| r.expect("a CSV row")[0].to_owned())
        .collect();
    assert_eq!(unreached, ["p39339-1", "fisso-1"], "{csv}");
    assert!(csv.contains("+390551234567"), "the landline to call: {csv}");
    let (code, html) = console.get(&format!("/console/alerts/{id}/not-reached"));
    assert_eq!(code, 200, "{html}");
    assert!(
        html.contains("Signora Fissa") || html.contains("fisso-1"),
        "{html}"
    );
    // The after-action report: failures by reason, the audit trail.
    let (code, report) = console.get(&format!("/console/alerts/{id}/report"));
    assert_eq!(code, 200, "{report}");
    assert!(report.contains("ERR 21 invalid number"), "{report}");
    let (code, approvals) = console.get("/console/approvals");
    assert_eq!(code, 200, "{approvals}");
    assert_eq!(serve.terminate(), Some(0));
}

pub fn console_approvals_refuse_the_creator_then_approve_and_reject(backend: &Backend) {
    let users = format!(
        "[console.users]\n{}\n{}",
        console_user("root", "segreto-root"),
        console_user("bob", "segreto-bob")
    );
    let p = Project::with_database(
        &format!(
            "{OUTBOX_CHANNELS}\n[serve]\nlisten = \"127.0.0.1:0\"\ndlr_token = \"{}\"\n\
             [console]\n{users}\n[approval]\napprovers = [\"root\", \"bob\"]\n",
            support::TOKEN
        ),
        backend,
    );
    p.contacts("cittadini.csv", &synthetic_rows(3, "example.org"));
    let serve = support::Serve::start(&p, &[]);
    // The tests run as root: root creates the alerts.
    let (code, out, err) = p.run(&meteo_send(&["--all", "--channel", "sms", "--yes"]));
    assert_eq!(code, 0, "{out}{err}");
    let first = alerts(&p)[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(alerts(&p)[0]["state"], "awaiting_approval");

    let root = Console::login(serve.port, "root", "segreto-root");
    let (code, page) = root.get("/console/approvals");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains(&first), "{page}");
    let approve = format!("/console/approvals/{first}/approve");
    let (code, refused) = root.post("/console/approvals", &approve);
    assert_eq!(code, 403, "the creator cannot approve: {refused}");
    assert!(refused.contains("created by `root`"), "{refused}");
    assert_eq!(alerts(&p)[0]["state"], "awaiting_approval");

    // Another approver can; the resume timer then sends it.
    let bob = Console::login(serve.port, "bob", "segreto-bob");
    let (code, approved) = bob.post("/console/approvals", &approve);
    assert_eq!(code, 200, "{approved}");
    assert!(approved.contains("Approved"), "{approved}");
    let status = ok_json(&p, &["status", &first]);
    assert_eq!(
        status["alert"]["state"], "sending",
        "left for the timer: {status}"
    );
    assert_eq!(status["alert"]["decided_by"], "bob", "{status}");
    let (code, _, err) = p.run(&["resume"]);
    assert_eq!(code, 0, "{err}");
    let status = ok_json(&p, &["status", &first]);
    assert_eq!(status["alert"]["state"], "settled", "{status}");
    assert_eq!(status["channels"]["sms"]["sent"], 3, "{status}");
    assert_eq!(outbox_to(&p, "sms", &first).len(), 3);
    let trail = ok_json(&p, &["audit", "--alert", &first]);
    let approvals: Vec<&Value> = trail["audit"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["command"] == "approve")
        .collect();
    assert_eq!(approvals.len(), 1, "{trail}");
    assert_eq!(approvals[0]["operator"], "bob", "{trail}");

    // Reject: nothing is ever sent.
    let (code, _, err) = p.run(&meteo_send(&["--all", "--channel", "sms", "--yes"]));
    assert_eq!(code, 0, "{err}");
    let second = alerts(&p)[0]["id"].as_str().expect("id").to_owned();
    assert_ne!(second, first);
    let (code, rejected) = bob.post(
        "/console/approvals",
        &format!("/console/approvals/{second}/reject"),
    );
    assert_eq!(code, 200, "{rejected}");
    let status = ok_json(&p, &["status", &second]);
    assert_eq!(status["alert"]["state"], "rejected", "{status}");
    assert_eq!(
        (
            status["channels"]["sms"]["sent"].clone(),
            status["channels"]["sms"]["skipped"].clone()
        ),
        (json!(0), json!(3)),
        "{status}"
    );
    assert!(outbox_to(&p, "sms", &second).is_empty());
    assert_eq!(p.run(&["audit", "verify"]).0, 0);
    assert_eq!(serve.terminate(), Some(0));
}
