//! A throwaway PostgreSQL cluster for tests (SPEC §18, TESTBED.md): Debian's
//! `initdb`/`pg_ctl` run as the `postgres` user (`runuser`, since `initdb`
//! refuses root) in a temp dir it owns, listening on a free port of
//! 127.0.0.1 only, with password (SCRAM) authentication over TCP so the
//! tests exercise the password path for real. Stopped (`-m immediate`) and
//! removed on drop.
//!
//! Included with `#[path = "common/pg.rs"] mod pg;` by the tests that need
//! it. Without PostgreSQL a test is skipped locally (a message says so) and
//! fails under CI (`CI=true`), where `.ci/run` installs `postgresql`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser and database the tests connect as.
pub const USER: &str = "allerta";
/// Its password (SCRAM over TCP; only the socket trusts the OS user).
pub const PASSWORD: &str = "s3cret pass";

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    stopped: bool,
}

/// The directory of `initdb` and `pg_ctl`: the newest
/// `/usr/lib/postgresql/<major>/bin`, where Debian puts them.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A port nobody listens on right now (bound and released: a small race
/// with other tests, which `Cluster::start` absorbs by trying again).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Cluster {
    /// A fresh cluster, or `None` (with a message) when PostgreSQL is not
    /// installed and this is not CI.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// A fresh cluster with these `postgresql.conf` settings (name, value
    /// as PostgreSQL writes it, quotes included), which must be reloadable
    /// (applied once the test database exists).
    pub fn start_with(settings: &[(&str, &str)]) -> Option<Self> {
        let Some(bin) = bin_dir() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
                     .ci/run installs Debian's `postgresql`"
                );
            }
            eprintln!("SKIPPED: PostgreSQL is not installed (apt-get install postgresql)");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("allerta-pg-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD).expect("write pwfile");
        if is_root() {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown pwfile");
        }
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            stopped: true,
        };
        cluster.run_ok(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-U",
                USER,
                "--pwfile",
                &pwfile.display().to_string(),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.launch();
        cluster.run_ok(
            "createdb",
            &[
                "-h",
                &cluster.socket_dir().display().to_string(),
                "-p",
                &cluster.port.to_string(),
                "-U",
                USER,
                USER,
            ],
        );
        // Settings apply after `createdb`, which would otherwise wait for
        // a synchronous standby that does not exist yet (all of them are
        // reloadable: `pg_ctl reload`).
        if !settings.is_empty() {
            cluster.configure(settings);
            let data = cluster.data().display().to_string();
            cluster.run_ok("pg_ctl", &["-D", &data, "reload"]);
        }
        Some(cluster)
    }

    /// A streaming standby of this cluster (`pg_basebackup -R`), started,
    /// read-only until promoted.
    pub fn standby(&self) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("allerta-pg-standby-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let mut standby = Self {
            dir,
            bin: self.bin.clone(),
            port: 0,
            stopped: true,
        };
        standby.run_ok(
            "pg_basebackup",
            &[
                "-D",
                &standby.data().display().to_string(),
                "-h",
                &self.socket_dir().display().to_string(),
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-R",
                "-X",
                "stream",
                // At once, not after a spread checkpoint (minutes).
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        // Promoted alone, it must not wait for a synchronous standby of its
        // own (the primary's settings came with the base backup).
        standby.configure(&[("synchronous_standby_names", "''")]);
        standby.launch();
        standby
    }

    /// Makes a standby the primary (`pg_ctl promote`, waiting for it).
    pub fn promote(&self) {
        let data = self.data().display().to_string();
        self.run_ok("pg_ctl", &["-D", &data, "-w", "promote"]);
    }

    fn configure(&self, settings: &[(&str, &str)]) {
        if settings.is_empty() {
            return;
        }
        let lines: String = settings
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))
            .and_then(|mut f| f.write_all(lines.as_bytes()))
            .expect("append to postgresql.conf");
    }

    /// Starts the server on a free port (tried again if another test took
    /// the port between the check and the start).
    fn launch(&mut self) {
        for attempt in 0..5 {
            self.port = free_port();
            if self.pg_ctl_start().status.success() {
                self.stopped = false;
                break;
            }
            assert!(
                attempt < 4,
                "pg_ctl start failed 5 times; log:\n{}",
                self.log()
            );
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// `postgres://allerta@127.0.0.1:PORT/allerta` (no password: the
    /// tests pass it as `database_password_env`/`_file` would).
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}@127.0.0.1:{}/{USER}?sslmode=disable",
            self.port
        )
    }

    fn pg_ctl_start(&self) -> Output {
        let opts = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.socket_dir().display(),
            self.port
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.dir.path().join("log").display().to_string(),
                "-o",
                &opts,
                "-w",
                "-t",
                "30",
                "start",
            ],
        )
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        // Run from the temp dir: the postgres user may not read the cwd.
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()))
    }

    fn run_ok(&self, tool: &str, args: &[&str]) {
        let out = self.run(tool, args);
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}\n{}\nlog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Stops the server at once, as a crash or the loss of its site would
    /// (`-m immediate`: every process quits, no checkpoint), keeping its
    /// files.
    pub fn kill(&mut self) {
        if !self.stopped {
            let data = self.data().display().to_string();
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
            self.stopped = true;
        }
    }
}

impl Cluster {
    /// Stops the server cleanly (`-m fast`: clients are disconnected,
    /// a checkpoint is written), as an administrator stopping the database
    /// would, keeping its files and its port for [`Cluster::start_again`].
    pub fn stop(&mut self) {
        if !self.stopped {
            let data = self.data().display().to_string();
            self.run_ok("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
            self.stopped = true;
        }
    }

    /// Starts a stopped (or killed) server again on the same port, so the
    /// URLs already written into configs reach it again.
    pub fn start_again(&mut self) {
        if !self.stopped {
            return;
        }
        // The port was released when it stopped; another test may have
        // taken it meanwhile, which is worth a few tries, not a new port.
        for attempt in 0..5 {
            if self.pg_ctl_start().status.success() {
                self.stopped = false;
                return;
            }
            assert!(
                attempt < 4,
                "pg_ctl start on port {} failed 5 times; log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Whether the server was stopped or killed (and not started again).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Runs `sql` with `psql` over the socket as [`USER`] (no password:
    /// the socket trusts the OS user) and returns its rows, one line each,
    /// columns separated by `|`. Panics, with the server's words, when the
    /// query fails. A statement is cancelled after 30 s (a commit waiting
    /// for a synchronous standby that is not there would otherwise hang
    /// the test). For tests that inspect the ledger without a client
    /// library or a runtime.
    pub fn psql(&self, sql: &str) -> Vec<String> {
        let sql = format!("SET statement_timeout = '30s'; {sql}");
        let out = self.run(
            "psql",
            &[
                "-h",
                &self.socket_dir().display().to_string(),
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                USER,
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &sql,
            ],
        );
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The one value `sql` returns, parsed as a count.
    pub fn count(&self, sql: &str) -> i64 {
        let rows = self.psql(sql);
        match rows.as_slice() {
            [one] => one
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{sql:?} returned {one:?}, not a count: {e}")),
            other => panic!("{sql:?} returned {} rows, not one", other.len()),
        }
    }

    /// Waits (up to 10 s) until this primary reports a standby streaming
    /// synchronously (`pg_stat_replication.sync_state = 'sync'`).
    pub fn wait_for_sync_standby(&self) {
        for _ in 0..100 {
            if self.count("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") > 0
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("no synchronous standby after 10 s; log:\n{}", self.log());
    }

    /// Whether the server is a standby (`pg_is_in_recovery()`).
    pub fn in_recovery(&self) -> bool {
        self.psql("SELECT pg_is_in_recovery()") == ["t"]
    }
}

fn postgres_ids() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .expect("id -u postgres");
    let uid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("uid");
    let out = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .expect("id -g postgres");
    let gid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("gid");
    (uid, gid)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill();
    }
}
