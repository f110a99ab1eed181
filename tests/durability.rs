//! A power cut loses no plan (SPEC §11): the plan is on disk (fsync of the
//! WAL) before the first message leaves. Proved on the real binary under
//! strace, sending to a real Kannel: every write to the WAL before the
//! first connection to the gateway is followed by an fsync/fdatasync of
//! the WAL before that connection.

mod common;
#[path = "servers/kannel.rs"]
mod kannel;

use std::process::Command;

use common::{Project, send_meteo_all, synthetic_rows};
use kannel::{Kannel, Route};

#[test]
fn the_plan_is_fsynced_before_the_first_connection_to_the_gateway() {
    if Command::new("strace").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "strace is missing under CI (.ci/run installs it)"
        );
        eprintln!("skipping: strace is not installed");
        return;
    }
    let k = Kannel::start(Route::Fake);
    let p = Project::new(&format!(
        "[channels.sms]\ntransport = \"kannel\"\nurl = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\nsender = \"ComuneML\"\nmax_segments = 3\n",
        k.sendsms_url(),
        kannel::USER,
        kannel::PASSWORD
    ));
    p.contacts("c.csv", &synthetic_rows(20, "example.org"));
    let trace = p.path("strace.log");
    let binary = assert_cmd::cargo::cargo_bin("allerta");
    let out = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=pwrite64,write,fsync,fdatasync,connect",
            "-o",
        ])
        .arg(&trace)
        .arg(&binary)
        .arg("--config")
        .arg(p.path("allerta.toml"))
        .args(send_meteo_all(&[]))
        .current_dir(p.dir.path())
        .output()
        .expect("strace");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(&trace).expect("trace");
    let gateway = format!("sin_port=htons({})", k.ports.sendsms);
    let lines: Vec<&str> = log.lines().collect();
    let first_connect = lines
        .iter()
        .position(|l| l.contains("connect(") && l.contains(&gateway))
        .expect("allerta connected to Kannel");
    // The plan is written by the main thread (the first in the trace); the
    // engine's writer thread then claims deliveries with batched,
    // unsynced commits, which a power cut may undo harmlessly (they go
    // back to pending and are sent).
    let main_tid = lines[0].split_whitespace().next().expect("tid");
    let by_main = |l: &&str| l.split_whitespace().next() == Some(main_tid);
    let wal = "allerta.db-wal>";
    let last_write = lines[..first_connect]
        .iter()
        .rposition(|l| by_main(l) && l.contains("pwrite64(") && l.contains(wal))
        .expect("the plan was written to the WAL before the first send");
    let synced = lines[last_write..first_connect].iter().any(|l| {
        by_main(l) && (l.contains("fdatasync(") || l.contains("fsync(")) && l.contains(wal)
    });
    assert!(
        synced,
        "the WAL was not synced between the plan's last write and the first connection:\n{}",
        lines[last_write..=first_connect].join("\n")
    );
    assert_eq!(k.received().len(), 20, "every SMS reached the gateway");
}
