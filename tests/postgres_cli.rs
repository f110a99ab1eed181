//! The real `allerta` binary on PostgreSQL (SPEC §18, issue 17): the same
//! commands as on SQLite, several workers on one alert, a worker killed,
//! the primary's site lost and its synchronous standby promoted, and the
//! database gone in the middle of a send. Every check is on what reached
//! the outbox files (what people would have received) and on the ledger as
//! PostgreSQL holds it.
//!
//! Each worker of an alert gets its own config, identical but for its
//! `outbox_dir`, so the test sees who sent what; every config points at the
//! same database. Channels are on the outbox transport with
//! `rate_per_second` set, so a send lasts long enough for a second worker
//! to join it or for something to go wrong in the middle of it.

mod common;
#[path = "common/pg.rs"]
mod pg;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use common::{OUTBOX_CHANNELS, Project, send_meteo_all, synthetic_rows};

/// The environment variable the configs name in `database_password_env`.
const PASSWORD_ENV: &str = "ALLERTA_TEST_DB_PASSWORD";

/// Recipients of the alerts that several workers share.
const N: usize = 3_000;

/// SMS per second for the whole deployment (SPEC §18: whatever the number
/// of workers): 3,000 take about 7.5 s, long enough to overlap.
const RATE: usize = 400;

/// SPEC §7's bound on duplicates after a crash: the sends in flight plus
/// the outcomes not yet committed. Outcomes are committed at least every
/// 100 ms; the loss of the database (or of the worker) is noticed at the
/// next write at the latest, so allow three such windows of sending at
/// [`RATE`], plus what may be in flight at once.
const DUPLICATE_BOUND: usize = RATE * 3 / 10 + 32;

/// A cluster, or `None` when PostgreSQL is missing outside CI.
macro_rules! cluster {
    () => {
        match pg::Cluster::start() {
            Some(c) => c,
            None => return,
        }
    };
    ($settings:expr) => {
        match pg::Cluster::start_with($settings) {
            Some(c) => c,
            None => return,
        }
    };
}

/// `postgres://allerta@127.0.0.1:P1,127.0.0.1:P2/allerta?…read-write`: the
/// URL of a deployment with a primary and a standby, in that order.
fn read_write_url(ports: &[u16]) -> String {
    let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    format!(
        "postgres://{u}@{}/{u}?sslmode=disable&target_session_attrs=read-write",
        hosts.join(","),
        u = pg::USER
    )
}

/// A project whose ledger is the PostgreSQL database at `url`, password
/// through `database_password_env`, with `general` extra lines (e.g.
/// `lease = "2s"`) and these channels.
fn pg_project(url: &str, general: &str, channels: &str) -> Project {
    let p = Project::new(channels);
    let path = p.path("allerta.toml");
    let config = std::fs::read_to_string(&path).expect("read config");
    let sqlite = "database = \"allerta.db\"\n";
    assert!(config.contains(sqlite), "the harness's config changed");
    let config = config.replacen(
        sqlite,
        &format!("database = \"{url}\"\ndatabase_password_env = \"{PASSWORD_ENV}\"\n{general}\n"),
        1,
    );
    std::fs::write(&path, config).expect("write config");
    p
}

/// A second worker's config: the same file but for its outbox directory.
/// Returns its path.
fn worker_config(p: &Project, name: &str) -> PathBuf {
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("read config");
    let default = "outbox_dir = \"outbox\"\n";
    assert!(config.contains(default), "the harness's config changed");
    let path = p.path(&format!("allerta-{name}.toml"));
    std::fs::write(
        &path,
        config.replacen(default, &format!("outbox_dir = \"outbox-{name}\"\n"), 1),
    )
    .expect("write worker config");
    path
}

/// SMS only, on the outbox transport, paced at [`RATE`].
fn paced_sms() -> String {
    format!("[channels.sms]\ntransport = \"outbox\"\nrate_per_second = {RATE}\n")
}

/// The binary with this config and the database password in its
/// environment, run from the project directory.
fn allerta(p: &Project, config: &Path) -> Command {
    let mut c = Command::cargo_bin("allerta").expect("allerta binary");
    c.current_dir(p.dir.path())
        .arg("--config")
        .arg(config)
        .env_remove("ALLERTA_CONFIG")
        .env(PASSWORD_ENV, pg::PASSWORD)
        .env("USER", "test-officer")
        .stdin(Stdio::null());
    c
}

/// Runs to the end: (exit code, stdout, stderr).
fn run(mut cmd: Command, args: &[&str]) -> (i32, String, String) {
    let out = cmd.args(args).output().expect("run allerta");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs with `--json` and parses stdout.
fn run_json(cmd: Command, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(cmd, &all);
    let doc = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!("stdout is not one JSON document ({e}):\n{out}\nstderr:\n{err}")
    });
    (code, doc, err)
}

/// A process started in the background, its output in files (a pipe
/// nobody reads would block it).
struct Running {
    child: Child,
    name: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    fn start(p: &Project, mut cmd: Command, name: &str, args: &[&str]) -> Self {
        let stdout = p.path(&format!("{name}.stdout"));
        let stderr = p.path(&format!("{name}.stderr"));
        let child = cmd
            .args(args)
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start allerta");
        Self {
            child,
            name: name.to_owned(),
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the exit, at most `limit` (then kills it and fails):
    /// (exit code, stdout, stderr).
    fn wait(mut self, limit: Duration) -> (i32, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} still running after {limit:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            self.stderr(),
        )
    }

    /// SIGKILL, as a crash or `kill -9` would.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Complete lines in `<dir>/<channel>.jsonl` right now (a line is written
/// whole, but a reader may catch the file between two writes).
fn lines_now(p: &Project, dir: &str, channel: &str) -> usize {
    std::fs::read(p.path(&format!("{dir}/{channel}.jsonl")))
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// Waits until `<dir>/sms.jsonl` has at least `n` lines while `worker`
/// runs (fails with its stderr if it exits first or takes a minute).
fn wait_for_sms(p: &Project, dir: &str, n: usize, worker: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines_now(p, dir, "sms") < n {
        if let Some(status) = worker.child.try_wait().expect("try_wait") {
            panic!(
                "{} exited ({status}) before {n} SMS were out: the test proves nothing; stderr:\n{}",
                worker.name,
                worker.stderr()
            );
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} SMS after a minute"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The addresses of every line in `<dir>/<channel>.jsonl`, one entry per
/// line (a duplicate appears twice).
fn addresses(p: &Project, dir: &str, channel: &str) -> Vec<String> {
    match std::fs::read_to_string(p.path(&format!("{dir}/{channel}.jsonl"))) {
        Ok(text) => text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("outbox line is JSON");
                v["to"].as_str().expect("outbox line has `to`").to_owned()
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn per_address<'a>(lists: impl IntoIterator<Item = &'a Vec<String>>) -> HashMap<String, usize> {
    let mut per = HashMap::new();
    for list in lists {
        for a in list {
            *per.entry(a.clone()).or_default() += 1;
        }
    }
    per
}

/// The id of the one alert in the database.
fn only_alert(cluster: &pg::Cluster) -> String {
    let ids = cluster.psql("SELECT id FROM alerts");
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

/// `(state, count)` of the deliveries of `alert`, as the database has them.
fn states(cluster: &pg::Cluster, alert: &str) -> HashMap<String, i64> {
    cluster
        .psql(&format!(
            "SELECT state, count(*) FROM deliveries WHERE alert_id = '{alert}' GROUP BY state"
        ))
        .into_iter()
        .map(|row| {
            let (state, n) = row.split_once('|').expect("state|count");
            (state.to_owned(), n.parse().expect("count"))
        })
        .collect()
}

/// Addresses whose SMS delivery of `alert` is settled (`sent`/`delivered`).
fn settled_addresses(cluster: &pg::Cluster, alert: &str) -> HashSet<String> {
    cluster
        .psql(&format!(
            "SELECT address FROM deliveries WHERE alert_id = '{alert}' AND channel = 'sms'
             AND state IN ('sent', 'delivered')"
        ))
        .into_iter()
        .collect()
}

/// The end of every scenario: the database holds `N` SMS deliveries, all
/// sent; the outboxes together reached every one of the `N` recipients,
/// each settled delivery of `settled_before` exactly once, and duplicates
/// stay within [`DUPLICATE_BOUND`].
fn assert_everyone_reached(
    cluster: &pg::Cluster,
    alert: &str,
    outboxes: &[Vec<String>],
    settled_before: &HashSet<String>,
) {
    let s = states(cluster, alert);
    assert_eq!(
        s,
        HashMap::from([("sent".to_owned(), N as i64)]),
        "every delivery planned and sent"
    );
    let per = per_address(outboxes);
    assert_eq!(per.len(), N, "someone was never messaged");
    for a in settled_before {
        assert_eq!(per[a], 1, "{a} was settled, then sent again");
    }
    let duplicates: usize = per.values().map(|k| k - 1).sum();
    assert!(
        duplicates <= DUPLICATE_BOUND,
        "{duplicates} duplicates (bound {DUPLICATE_BOUND})"
    );
}

#[test]
fn send_and_status_on_postgresql_count_as_on_sqlite() {
    let cluster = cluster!();
    let rows = synthetic_rows(200, "example.org");

    let sqlite = Project::new(OUTBOX_CHANNELS);
    sqlite.contacts("c.csv", &rows);
    let (code, sqlite_doc, err) = sqlite.json(&send_meteo_all(&[]));
    assert_eq!(code, 0, "{err}");

    // The password from a file this time (`_file`), as a systemd
    // credential would give it.
    let p = Project::new(OUTBOX_CHANNELS);
    p.write("db-password", &format!("{}\n", pg::PASSWORD));
    let path = p.path("allerta.toml");
    let config = std::fs::read_to_string(&path)
        .expect("read config")
        .replacen(
            "database = \"allerta.db\"\n",
            &format!(
                "database = \"{}\"\ndatabase_password_file = \"db-password\"\n",
                cluster.url()
            ),
            1,
        );
    std::fs::write(&path, config).expect("write config");
    p.contacts("c.csv", &rows);
    // A dry run writes nothing, not even the schema.
    let (code, _, err) = p.run(&send_meteo_all(&["--dry-run"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        cluster.count("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'"),
        0,
        "a dry run created tables"
    );
    let (code, doc, err) = p.json(&send_meteo_all(&[]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["alert"]["state"], "settled", "{doc}");
    assert_eq!(
        doc["channels"], sqlite_doc["channels"],
        "the same counts as on SQLite"
    );
    for channel in ["sms", "email", "telegram"] {
        assert_eq!(doc["channels"][channel]["sent"], 200, "{channel}: {doc}");
        let per = per_address([&addresses(&p, "outbox", channel)]);
        assert_eq!(per.len(), 200, "{channel}");
        assert!(per.values().all(|&k| k == 1), "{channel}: sent twice");
    }

    let id = only_alert(&cluster);
    assert_eq!(doc["alert"]["id"], id.as_str());
    assert!(!p.path("allerta.db").exists(), "a SQLite file was created");
    let (code, status, err) = p.json(&["status", &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        status["channels"], doc["channels"],
        "status agrees with send"
    );
    assert_eq!(
        cluster.count(&format!(
            "SELECT count(*) FROM deliveries WHERE alert_id = '{id}' AND state = 'sent'"
        )),
        cluster.count("SELECT count(*) FROM deliveries"),
        "every delivery in the database is sent"
    );
    let (code, list, err) = p.json(&["list"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(list["alerts"][0]["id"], id.as_str(), "{list}");
    let (code, csv, err) = p.run(&["export", &id, "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let (_, sqlite_csv, _) = sqlite.run(&[
        "export",
        sqlite_doc["alert"]["id"].as_str().expect("id"),
        "--format",
        "csv",
    ]);
    assert_eq!(
        csv.lines().count(),
        sqlite_csv.lines().count(),
        "the export has every delivery"
    );
}

#[test]
fn two_workers_share_one_alert_and_reach_everyone_once() {
    let cluster = cluster!();
    let p = pg_project(&cluster.url(), "", &paced_sms());
    p.contacts("c.csv", &synthetic_rows(N, "example.org"));
    let config_a = p.path("allerta.toml");
    let config_b = worker_config(&p, "b");

    let mut a = Running::start(
        &p,
        allerta(&p, &config_a),
        "send",
        &send_meteo_all(&["--channel", "sms"]),
    );
    wait_for_sms(&p, "outbox", 1, &mut a);
    let id = only_alert(&cluster);
    // A second machine joins while the first is sending.
    let b = Running::start(
        &p,
        allerta(&p, &config_b),
        "resume",
        &["--json", "resume", &id, "--yes"],
    );
    let (code_b, _, err_b) = b.wait(Duration::from_secs(120));
    let (code_a, _, err_a) = a.wait(Duration::from_secs(120));
    assert_eq!(code_a, 0, "send: {err_a}");
    assert_eq!(code_b, 0, "resume: {err_b}");

    let sent_a = addresses(&p, "outbox", "sms");
    let sent_b = addresses(&p, "outbox-b", "sms");
    assert!(
        !sent_a.is_empty() && !sent_b.is_empty(),
        "each worker did a share: {} and {}",
        sent_a.len(),
        sent_b.len()
    );
    let per = per_address([&sent_a, &sent_b]);
    assert_eq!(per.len(), N, "someone was never messaged");
    let twice: Vec<_> = per.iter().filter(|(_, k)| **k > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(
        states(&cluster, &id),
        HashMap::from([("sent".to_owned(), N as i64)])
    );
    assert_eq!(
        cluster.psql(&format!("SELECT state FROM alerts WHERE id = '{id}'")),
        ["settled"]
    );
    // Two workers together keep the channel's rate (SPEC §18): the sends
    // span at least (N - 1) / RATE seconds, as with one worker. A slow
    // machine only lengthens it; two workers at the rate each would take
    // about half.
    let span_ms = cluster.count(&format!(
        "SELECT MAX(t.at) - MIN(t.at) FROM attempts t JOIN deliveries d ON d.id = t.delivery_id
         WHERE d.alert_id = '{id}' AND t.outcome = 'sent'"
    ));
    let least_ms = ((N - 1) * 1000 / RATE) as i64;
    assert!(
        span_ms * 100 >= least_ms * 97,
        "{N} SMS in {span_ms} ms: faster than {RATE}/s for the whole deployment ({least_ms} ms)"
    );
}

#[test]
fn a_killed_workers_claims_are_taken_over_after_its_lease() {
    let cluster = cluster!();
    let p = pg_project(&cluster.url(), "lease = \"2s\"", &paced_sms());
    p.contacts("c.csv", &synthetic_rows(N, "example.org"));
    let config_b = worker_config(&p, "b");

    let mut a = Running::start(
        &p,
        allerta(&p, &p.path("allerta.toml")),
        "send",
        &send_meteo_all(&["--channel", "sms"]),
    );
    wait_for_sms(&p, "outbox", RATE, &mut a);
    a.kill();
    let id = only_alert(&cluster);
    let claimed = cluster.count(&format!(
        "SELECT count(*) FROM deliveries WHERE alert_id = '{id}' AND state = 'sending'"
    ));
    assert!(
        claimed > 0,
        "the kill left no claim: the test proves nothing"
    );
    let settled = settled_addresses(&cluster, &id);

    // Another machine finishes it, once the dead worker's lease is over.
    let (code, doc, err) = run_json(allerta(&p, &config_b), &["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["channels"]["sms"]["sent"], N as u64, "{doc}");
    let sent_b = addresses(&p, "outbox-b", "sms");
    assert!(!sent_b.is_empty());
    assert_everyone_reached(
        &cluster,
        &id,
        &[addresses(&p, "outbox", "sms"), sent_b],
        &settled,
    );
    assert_eq!(
        cluster.count("SELECT count(*) FROM deliveries WHERE lease_owner IS NOT NULL"),
        0,
        "no lease left behind"
    );
}

#[test]
fn promoting_the_synchronous_standby_mid_send_loses_nobody() {
    let mut primary = cluster!(&[
        ("synchronous_standby_names", "'*'"),
        ("synchronous_commit", "on"),
    ]);
    let standby = primary.standby();
    primary.wait_for_sync_standby();
    let url = read_write_url(&[primary.port, standby.port]);
    let p = pg_project(&url, "lease = \"2s\"", &paced_sms());
    p.contacts("c.csv", &synthetic_rows(N, "example.org"));
    let config_b = worker_config(&p, "b");

    let mut a = Running::start(
        &p,
        allerta(&p, &p.path("allerta.toml")),
        "send",
        &send_meteo_all(&["--channel", "sms"]),
    );
    wait_for_sms(&p, "outbox", RATE, &mut a);
    let id = only_alert(&primary);
    // Settled on the primary: with synchronous replication, on the
    // standby too.
    let settled = settled_addresses(&primary, &id);
    assert!(!settled.is_empty());
    primary.kill();
    standby.promote();

    // The sender reconnects through the URL to the promoted standby and
    // finishes, or gives up and says how to resume: either way a `resume`
    // with the same URL leaves nothing behind.
    let (code, _, err) = a.wait(Duration::from_secs(180));
    assert!(code == 0 || code == 1, "send exit {code}: {err}");
    if code == 1 {
        assert!(err.contains(&format!("allerta resume {id}")), "{err}");
    }
    let (code, _, err) = run(allerta(&p, &config_b), &["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_everyone_reached(
        &standby,
        &id,
        &[
            addresses(&p, "outbox", "sms"),
            addresses(&p, "outbox-b", "sms"),
        ],
        &settled,
    );
}

#[test]
fn the_sender_stops_when_the_database_is_gone_and_says_how_to_resume() {
    let mut cluster = cluster!();
    let p = pg_project(&cluster.url(), "lease = \"2s\"", &paced_sms());
    p.contacts("c.csv", &synthetic_rows(N, "example.org"));

    // SPEC §18: retries with backoff for up to two minutes, then exit 1;
    // the window is 3 s here (ALLERTA_DB_RETRY), the code path the same.
    let mut send = allerta(&p, &p.path("allerta.toml"));
    send.env("ALLERTA_DB_RETRY", "3s");
    let mut a = Running::start(&p, send, "send", &send_meteo_all(&["--channel", "sms"]));
    wait_for_sms(&p, "outbox", RATE, &mut a);
    let id = only_alert(&cluster);
    cluster.stop();
    let at_stop = lines_now(&p, "outbox", "sms");

    let (code, _, err) = a.wait(Duration::from_secs(60));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("allerta resume {id}")),
        "the command to finish it: {err}"
    );
    let after = lines_now(&p, "outbox", "sms") - at_stop;
    assert!(
        after <= DUPLICATE_BOUND,
        "{after} SMS sent after the database went away: they cannot be recorded"
    );
    assert!(
        lines_now(&p, "outbox", "sms") < N,
        "it sent everything anyway"
    );

    cluster.start_again();
    let (code, _, err) = run(
        allerta(&p, &p.path("allerta.toml")),
        &["resume", &id, "--yes"],
    );
    assert_eq!(code, 0, "{err}");
    assert_everyone_reached(
        &cluster,
        &id,
        &[addresses(&p, "outbox", "sms")],
        &HashSet::new(),
    );
}

/// A database that comes back within the retry window (a restart, a
/// promotion by Patroni): the same send carries on and finishes, nobody is
/// lost, and what it sent meanwhile is recorded once the database is back.
#[test]
fn a_database_back_within_the_window_lets_the_send_finish_by_itself() {
    let mut cluster = cluster!();
    let p = pg_project(&cluster.url(), "lease = \"30s\"", &paced_sms());
    p.contacts("c.csv", &synthetic_rows(N, "example.org"));
    let mut send = allerta(&p, &p.path("allerta.toml"));
    send.env("ALLERTA_DB_RETRY", "60s");
    let mut a = Running::start(&p, send, "send", &send_meteo_all(&["--channel", "sms"]));
    wait_for_sms(&p, "outbox", RATE, &mut a);
    let id = only_alert(&cluster);
    let settled = settled_addresses(&cluster, &id);
    cluster.stop();
    let at_stop = lines_now(&p, "outbox", "sms");
    std::thread::sleep(Duration::from_secs(3));
    let during = lines_now(&p, "outbox", "sms") - at_stop;
    assert!(
        during <= DUPLICATE_BOUND,
        "{during} SMS sent while the database was away: only those in flight may finish"
    );
    cluster.start_again();
    let (code, _, err) = a.wait(Duration::from_secs(120));
    assert_eq!(
        code, 0,
        "the send finished once the database was back: {err}"
    );
    assert!(
        err.contains("database unreachable"),
        "the wait is logged: {err}"
    );
    assert_everyone_reached(&cluster, &id, &[addresses(&p, "outbox", "sms")], &settled);
}

/// The harness parts the tests above rely on, checked now: a synchronous
/// standby has every committed row and refuses writes until promoted; a
/// primary stopped and started again on its port keeps its data; the
/// read-write URL's host list finds the promoted standby once the primary
/// is gone.
#[test]
fn the_harness_stops_restarts_and_promotes_clusters() {
    let mut primary = cluster!(&[
        ("synchronous_standby_names", "'*'"),
        ("synchronous_commit", "on"),
    ]);
    // Writes wait for a synchronous standby from here on.
    let standby = primary.standby();
    primary.wait_for_sync_standby();
    assert!(standby.in_recovery() && !primary.in_recovery());
    primary.psql("CREATE TABLE t (n int); INSERT INTO t VALUES (1)");
    // Synchronous: committed on the primary means flushed on the standby;
    // applied a moment later.
    let applied = |n: i64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while standby.count("SELECT count(*) FROM t") < n {
            assert!(
                Instant::now() < deadline,
                "the standby never applied row {n}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    applied(1);

    let port = primary.port;
    primary.stop();
    assert!(primary.is_stopped());
    primary.start_again();
    assert_eq!(
        primary.port, port,
        "the same port, so configs still reach it"
    );
    primary.wait_for_sync_standby();
    primary.psql("INSERT INTO t VALUES (2)");
    assert_eq!(primary.count("SELECT count(*) FROM t"), 2, "data kept");
    applied(2);

    primary.kill();
    standby.promote();
    assert!(!standby.in_recovery(), "promoted");
    standby.psql("INSERT INTO t VALUES (3)");
    // The URL the configs use: the dead primary first, then the standby.
    let url = read_write_url(&[primary.port, standby.port]);
    let n: i64 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let mut config: tokio_postgres::Config = url.parse().expect("the URL parses");
            config.password(pg::PASSWORD);
            let (client, conn) = config
                .connect(tokio_postgres::NoTls)
                .await
                .expect("the URL reaches the promoted standby");
            tokio::spawn(conn);
            client
                .query_one("SELECT count(*) FROM t", &[])
                .await
                .expect("count")
                .get(0)
        });
    assert_eq!(n, 3);
}
