//! Helpers shared by the contract scenarios: projects, the binary's
//! `--json` documents, the outbox, the audit trail.

use super::*;

// ---------------------------------------------------------------------
// Helpers shared by the scenarios
// ---------------------------------------------------------------------

pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Three citizens (anna twice, in two lists) and carla of the drill group.
pub fn citizens(backend: &Backend) -> Project {
    let p = Project::with_database(OUTBOX_CHANNELS, backend);
    p.contacts(
        "cittadini.csv",
        &[
            "anna,Anna Bianchi,333 000 0001,anna@example.org,100000001,centro,cittadini,it,".into(),
            "bob,Bob Smith,+39 333 000 0002,bob@example.org,,fibbiana,cittadini,en,sms;email"
                .into(),
            "carla,Carla Verdi,3330000003,,100000003,centro,esercitazione,it,".into(),
        ],
    );
    p.contacts(
        "volontari.csv",
        &["anna-vol,Anna Bianchi,+393330000001,ANNA@EXAMPLE.ORG,,centro,volontari,it,".into()],
    );
    p
}

/// `n` synthetic citizens and only an SMS outbox paced at `rate` per
/// second: a send lasts long enough to act on it half way.
pub fn slow_sms(backend: &Backend, n: usize, rate: u32) -> Project {
    let p = Project::with_database(
        &format!(
            "[channels.sms]\ntransport = \"outbox\"\nrate_per_second = {rate}\nmax_segments = 3\n"
        ),
        backend,
    );
    p.contacts("c.csv", &synthetic_rows(n, "example.org"));
    p
}

pub fn meteo_send(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec!["send"];
    args.extend(METEO);
    args.extend_from_slice(extra);
    args
}

pub fn ok_json(p: &Project, args: &[&str]) -> Value {
    let (code, doc, err) = p.json(args);
    assert_eq!(code, 0, "{args:?}: {err}\n{doc}");
    doc
}

/// The alerts of `list --json`, newest first.
pub fn alerts(p: &Project) -> Vec<Value> {
    ok_json(p, &["list"])["alerts"]
        .as_array()
        .expect("list --json has alerts")
        .clone()
}

pub fn id_of(doc: &Value) -> String {
    doc["alert"]["id"].as_str().expect("alert id").to_owned()
}

/// `status ID --deliveries --json`'s deliveries.
pub fn deliveries(p: &Project, id: &str) -> Vec<Value> {
    ok_json(p, &["status", id, "--deliveries"])["deliveries"]
        .as_array()
        .expect("deliveries")
        .clone()
}

pub fn outbox_to(p: &Project, channel: &str, alert: &str) -> Vec<String> {
    p.outbox(channel)
        .iter()
        .filter(|l| l["alert_id"] == alert)
        .map(|l| l["to"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub fn spawn(p: &Project, args: &[&str]) -> Child {
    p.cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn allerta")
}

pub fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `audit verify` passes and `audit --json` lists exactly `commands`, in
/// order, each row chained to the one before.
pub fn audit_is_whole(p: &Project, commands: &[&str]) {
    let (code, out, err) = p.run(&["audit", "verify"]);
    assert_eq!(code, 0, "audit verify: {out}{err}");
    let doc = ok_json(p, &["audit"]);
    let rows = doc["audit"].as_array().expect("audit rows");
    let listed: Vec<&str> = rows
        .iter()
        .map(|r| r["command"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(listed, commands, "{doc}");
    for pair in rows.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "{doc}");
    }
}

pub fn all_outbox(p: &Project) -> usize {
    ["telegram", "sms", "email", "banner"]
        .iter()
        .map(|c| p.outbox(c).len())
        .sum()
}

pub fn check_item(doc: &Value, item: &str) -> Value {
    doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["item"] == item)
        .cloned()
        .unwrap_or_else(|| panic!("no item {item} in {doc}"))
}
