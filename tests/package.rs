//! The Debian package: built by packaging/build-deb.sh with cargo-deb from
//! the binary under test, it holds the binary, the units, the example
//! config in /etc/allerta, the templates, the man pages and completions, and
//! its maintainer scripts create the system user without starting anything.
//! Unpacked into a scratch root, its own binary, config, templates and
//! example contacts pass `allerta check` and run a drill (outbox).
//!
//! Needs cargo-deb (`cargo install cargo-deb --locked`, done by .ci/run).
//! Outside CI a machine without it skips the package build with a note;
//! under CI (`CI` set) its absence fails.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn have_cargo_deb() -> bool {
    let ok = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "cargo-deb is missing: `cargo install cargo-deb --locked` (.ci/run does it)"
        );
        eprintln!("note: cargo-deb not installed, skipping the package build");
    }
    ok
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the .deb from the binary under test into `out`.
fn build_deb(out: &Path) -> PathBuf {
    let stdout = run(Command::new("bash")
        .arg(repo().join("packaging/build-deb.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_allerta"))
        .arg("--out")
        .arg(out));
    let deb = PathBuf::from(stdout.trim());
    assert!(
        deb.extension().is_some_and(|e| e == "deb") && deb.is_file(),
        "build-deb.sh did not print a .deb path: {stdout}"
    );
    deb
}

#[test]
fn the_deb_holds_binary_units_config_templates_docs_man_pages_and_completions() {
    if !have_cargo_deb() {
        return;
    }
    let out = tempfile::tempdir().expect("out dir");
    let deb = build_deb(out.path());

    let listing = run(Command::new("dpkg").arg("-c").arg(&deb));
    let paths: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.'))
        .collect();
    let mut expected = vec![
        "/usr/bin/allerta".to_owned(),
        "/etc/allerta/allerta.toml".to_owned(),
        "/usr/lib/systemd/system/allerta-bot.service".to_owned(),
        "/usr/lib/systemd/system/allerta-serve.service".to_owned(),
        "/usr/lib/systemd/system/allerta-resume.service".to_owned(),
        "/usr/lib/systemd/system/allerta-resume.timer".to_owned(),
        "/usr/lib/systemd/system/allerta-check.service".to_owned(),
        "/usr/lib/systemd/system/allerta-check.timer".to_owned(),
        "/usr/share/doc/allerta/install-debian.md".to_owned(),
        "/usr/share/doc/allerta/postgresql.md".to_owned(),
        "/usr/share/man/man1/allerta.1.gz".to_owned(),
        "/usr/share/man/man1/allerta-send.1.gz".to_owned(),
        "/usr/share/man/man1/allerta-check.1.gz".to_owned(),
        "/usr/share/bash-completion/completions/allerta".to_owned(),
        "/usr/share/zsh/vendor-completions/_allerta".to_owned(),
        "/usr/share/fish/vendor_completions.d/allerta.fish".to_owned(),
    ];
    for entry in std::fs::read_dir(repo().join("templates")).expect("templates") {
        let name = entry.expect("entry").file_name();
        expected.push(format!(
            "/usr/share/allerta/templates/{}",
            name.to_string_lossy()
        ));
    }
    for path in &expected {
        assert!(
            paths.contains(&path.as_str()),
            "{path} missing from the .deb:\n{listing}"
        );
    }
    // No man page for the hidden packaging command or clap's help pseudo-command.
    assert!(!listing.contains("allerta-generate"), "{listing}");
    assert!(!listing.contains("-help"), "{listing}");
    // The binary is stripped (a debug build is ~160 MB with its symbols).
    let bin_size: u64 = listing
        .lines()
        .find(|l| l.ends_with("./usr/bin/allerta"))
        .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
        .expect("binary size");
    assert!(
        bin_size < 80_000_000,
        "binary not stripped: {bin_size} bytes"
    );

    // Control: depends on adduser (the postinst uses it), /etc config is a conffile.
    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    let depends = info
        .lines()
        .find(|l| l.trim_start().starts_with("Depends:"))
        .unwrap_or_else(|| panic!("no Depends:\n{info}"));
    assert!(
        depends.contains("adduser") && depends.contains("libc6"),
        "{depends}"
    );
    let control = tempfile::tempdir().expect("control dir");
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(control.path()));
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).expect("conffiles");
    assert!(
        conffiles.lines().any(|l| l == "/etc/allerta/allerta.toml"),
        "{conffiles}"
    );
    for script in ["postinst", "prerm", "postrm"] {
        assert!(control.path().join(script).is_file(), "{script} missing");
    }

    // Debian policy: lintian finds no error (CI installs it).
    match Command::new("lintian")
        .args(["--fail-on", "error", "--tag-display-limit", "0"])
        .arg(&deb)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "lintian found errors:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "lintian missing: {e}");
            eprintln!("note: lintian not installed, skipping the policy check");
        }
    }
}

#[test]
fn maintainer_scripts_create_the_user_and_never_enable_or_start_a_service() {
    let dir = repo().join("packaging/debian");
    for script in ["postinst", "prerm", "postrm"] {
        let path = dir.join(script);
        run(Command::new("sh").arg("-n").arg(&path));
        let text = std::fs::read_to_string(&path).expect("script");
        for forbidden in [
            "systemctl enable",
            "systemctl start",
            "systemctl restart",
            "deb-systemd-helper enable",
            "deb-systemd-invoke start",
            "--now",
        ] {
            assert!(!text.contains(forbidden), "{script} contains `{forbidden}`");
        }
    }
    let postinst = std::fs::read_to_string(dir.join("postinst")).expect("postinst");
    assert!(postinst.contains("adduser --system --group"), "system user");
    assert!(postinst.contains("/var/lib/allerta"), "state directory");
    // Every credential a unit loads is created (empty) by the postinst, so
    // units start for sites that do not use every channel (exactly: see
    // postinst_creates_and_postrm_purges_exactly_the_credentials_the_units_load).
    for unit in std::fs::read_dir(repo().join("systemd")).expect("systemd/") {
        let text = std::fs::read_to_string(unit.expect("unit").path()).expect("unit text");
        for line in text
            .lines()
            .filter_map(|l| l.strip_prefix("LoadCredential="))
        {
            let id = line.split(':').next().expect("id");
            assert!(
                postinst.contains(id),
                "postinst does not create credential {id}"
            );
        }
    }
}

/// The package's files, unpacked into a scratch root with the absolute
/// paths of the shipped config pointed into it: what a sysadmin gets.
#[test]
fn the_unpacked_package_passes_check_and_runs_a_drill_on_the_outbox() {
    if !have_cargo_deb() {
        return;
    }
    let out = tempfile::tempdir().expect("out dir");
    let deb = build_deb(out.path());
    let root = tempfile::tempdir().expect("root");
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path()));
    let r = root.path().display().to_string();
    let state = root.path().join("var/lib/allerta");
    let contacts = root.path().join("etc/allerta/contacts");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::create_dir_all(&contacts).expect("contacts dir");
    // As the install guide says: start from the example staff list.
    std::fs::copy(
        root.path()
            .join("usr/share/allerta/examples/contacts/personale.csv"),
        contacts.join("personale.csv"),
    )
    .expect("copy example contacts");
    let config_path = root.path().join("etc/allerta/allerta.toml");
    let shipped = std::fs::read_to_string(&config_path).expect("shipped config");
    let config = shipped
        .replace("\"/var/lib/allerta", &format!("\"{r}/var/lib/allerta"))
        .replace("\"/usr/share/allerta", &format!("\"{r}/usr/share/allerta"))
        .replace("\"/etc/allerta", &format!("\"{r}/etc/allerta"))
        .replace("\"/var/www/allerta", &format!("\"{r}/var/www/allerta"));
    assert_ne!(
        config, shipped,
        "the shipped config uses the packaged paths"
    );
    std::fs::write(&config_path, config).expect("config");

    let bin = root.path().join("usr/bin/allerta");
    let allerta = |args: &[&str]| {
        let out = Command::new(&bin)
            .arg("--config")
            .arg(&config_path)
            .args(args)
            .env("USER", "test-officer")
            .env_remove("ALLERTA_CONFIG")
            .current_dir(root.path())
            .output()
            .expect("run the packaged allerta");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = allerta(&["check"]);
    assert_eq!(code, 0, "check of the fresh install:\n{stdout}\n{stderr}");

    let (code, stdout, stderr) = allerta(&["send", "esercitazione", "--drill"]);
    assert_eq!(code, 0, "drill:\n{stdout}\n{stderr}");
    let sms = std::fs::read_to_string(state.join("outbox/sms.jsonl")).expect("sms outbox");
    assert!(sms.lines().count() >= 1, "no drill SMS in the outbox");
    assert!(sms.contains("[ESERCITAZIONE]"), "{sms}");
    assert!(
        state.join("allerta.db").is_file(),
        "ledger in /var/lib/allerta"
    );
}

#[test]
fn the_shipped_config_is_valid() {
    let out = Command::new(env!("CARGO_BIN_EXE_allerta"))
        .arg("--config")
        .arg(repo().join("packaging/allerta.toml"))
        .args(["--json", "check"])
        .env_remove("ALLERTA_CONFIG")
        .output()
        .expect("run allerta check");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("check --json prints one document");
    let config = &doc["items"][0];
    assert_eq!(config["item"], "config");
    assert_eq!(config["ok"], true, "{config}");
}

/// The maintainer scripts run for real (as root, in a private mount
/// namespace with a copy of /etc and an empty /var, so the host is never
/// touched): a system user, its directories and the empty credential files
/// with the modes the units and the install guide rely on; idempotent;
/// purge removes the credentials and keeps the ledger.
#[test]
fn maintainer_scripts_create_user_directories_and_credentials_with_the_right_modes() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        eprintln!("note: not root, skipping the maintainer-script run");
        return;
    }
    let work = tempfile::tempdir().expect("work dir");
    let out = run(Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(repo().join("packaging/test-maintainer-scripts.sh"))
        .arg(work.path()));
    let lines: Vec<&str> = out.lines().collect();
    for expected in [
        "user allerta:/var/lib/allerta:/usr/sbin/nologin",
        "system-uid 1",
        "allerta:allerta 770 /var/lib/allerta",
        "allerta:allerta 755 /var/www/allerta",
        "root:allerta 750 /etc/allerta/contacts",
        "dlr-token kept",
        "dlr-token random letters and digits",
        "telegram-token left to the officer",
        "sms-password left to the officer",
        "smtp-password left to the officer",
        "voice-token left to the officer",
        "facebook-token left to the officer",
        "mastodon-token left to the officer",
        "bluesky-password left to the officer",
        // An upgrade never overwrites a secret the officer wrote, and
        // creates the files a newer release's units load.
        "voice-token kept",
        "telegram-token kept",
        "facebook-token created on upgrade",
        "root:allerta 750 /etc/allerta/credentials",
        "after-remove 9 credentials",
        "after-purge left site-notes",
        "after-purge credentials gone",
        "after-purge ledger kept",
    ] {
        assert!(lines.contains(&expected), "missing `{expected}` in:\n{out}");
    }
    // Exactly the packaged credentials, each root:allerta 0640 (never
    // world-readable, even under umask 0000).
    let files: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains(" /etc/allerta/credentials/"))
        .collect();
    let wanted: Vec<String> = PACKAGED_CREDENTIALS
        .iter()
        .map(|name| format!("root:allerta 640 /etc/allerta/credentials/{name}"))
        .collect();
    let mut sorted_files = files.clone();
    sorted_files.sort_unstable();
    let mut sorted_wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    sorted_wanted.sort_unstable();
    assert_eq!(sorted_files, sorted_wanted, "credential files:\n{out}");
}

/// Every credential the package handles: created by postinst, loaded by
/// the units that use it, named by the shipped config, purged by postrm.
const PACKAGED_CREDENTIALS: &[&str] = &[
    "telegram-token",
    "sms-password",
    "smtp-password",
    "dlr-token",
    "voice-token",
    "facebook-token",
    "mastodon-token",
    "bluesky-password",
    "db-password",
];

/// The `CREDENTIALS="…"` list of a maintainer script.
fn script_credentials(script: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("packaging/debian").join(script))
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("CREDENTIALS=\""))
        .unwrap_or_else(|| panic!("{script}: no CREDENTIALS=\"…\" line"));
    let mut names: Vec<String> = line
        .trim_end_matches('"')
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    names.sort_unstable();
    names
}

#[test]
fn postinst_creates_and_postrm_purges_exactly_the_credentials_the_units_load() {
    let mut packaged: Vec<String> = PACKAGED_CREDENTIALS.iter().map(|s| s.to_string()).collect();
    packaged.sort_unstable();
    assert_eq!(script_credentials("postinst"), packaged, "postinst");
    assert_eq!(script_credentials("postrm"), packaged, "postrm");
    let mut loaded = std::collections::BTreeSet::new();
    for unit in std::fs::read_dir(repo().join("systemd")).expect("systemd/") {
        let text = std::fs::read_to_string(unit.expect("unit").path()).expect("unit text");
        for line in text
            .lines()
            .filter_map(|l| l.strip_prefix("LoadCredential="))
        {
            loaded.insert(line.split(':').next().expect("id").to_owned());
        }
    }
    assert_eq!(
        loaded.into_iter().collect::<Vec<_>>(),
        packaged,
        "the units load other credentials than the package creates"
    );
}

/// Every `*_file` secret of the shipped config, commented example or not,
/// with the section it belongs to: (`channels.voice.auth_token_file`, value).
fn shipped_secret_files(config: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut found = Vec::new();
    for line in config.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.split_once(']')) {
            section = header.0.to_owned();
        } else if let Some((key, value)) = line.split_once('=') {
            let key = key.trim();
            if key.ends_with("_file") && key != "ca_file" {
                let value = value
                    .split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches('"');
                found.push((format!("{section}.{key}"), value.to_owned()));
            }
        }
    }
    found.sort_unstable();
    found
}

#[test]
fn the_shipped_config_names_each_credential_as_credentials_directory_slash_name() {
    let shipped =
        std::fs::read_to_string(repo().join("packaging/allerta.toml")).expect("shipped config");
    let mut expected: Vec<(String, String)> = [
        ("channels.telegram.token_file", "telegram-token"),
        ("channels.sms.password_file", "sms-password"),
        ("channels.email.password_file", "smtp-password"),
        ("serve.dlr_token_file", "dlr-token"),
        ("channels.voice.auth_token_file", "voice-token"),
        ("channels.facebook.access_token_file", "facebook-token"),
        ("channels.mastodon.access_token_file", "mastodon-token"),
        ("channels.bluesky.app_password_file", "bluesky-password"),
        ("general.database_password_file", "db-password"),
    ]
    .iter()
    .map(|(key, name)| (key.to_string(), format!("$CREDENTIALS_DIRECTORY/{name}")))
    .collect();
    expected.sort_unstable();
    assert_eq!(shipped_secret_files(&shipped), expected);
    assert_eq!(expected.len(), PACKAGED_CREDENTIALS.len());
}

/// The commented examples of the voice and social channels are real
/// configuration: uncommented, allerta accepts them (every key known).
#[test]
fn the_shipped_voice_and_social_examples_are_valid_once_uncommented() {
    let shipped =
        std::fs::read_to_string(repo().join("packaging/allerta.toml")).expect("shipped config");
    let mut config = String::new();
    let mut uncommenting = false;
    let mut blocks = 0;
    for line in shipped.lines() {
        if let Some(header) = line.strip_prefix("# [channels.") {
            uncommenting = ["voice]", "facebook]", "mastodon]", "bluesky]"].contains(&header);
            blocks += usize::from(uncommenting);
        } else if !line.starts_with("# ") {
            uncommenting = false;
        }
        let line = match line.strip_prefix("# ") {
            Some(rest) if uncommenting => rest,
            _ => line,
        };
        config.push_str(line);
        config.push('\n');
    }
    assert_eq!(blocks, 4, "four commented channel examples");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("allerta.toml");
    std::fs::write(&path, &config).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_allerta"))
        .arg("--config")
        .arg(&path)
        .args(["--json", "check"])
        .env_remove("ALLERTA_CONFIG")
        .env("CREDENTIALS_DIRECTORY", dir.path())
        .output()
        .expect("run allerta check");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let item = &doc["items"][0];
    assert_eq!(item["item"], "config");
    assert_eq!(item["ok"], true, "{item}\n{config}");
    for channel in ["voice", "facebook", "mastodon", "bluesky"] {
        assert!(
            doc["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|i| i["item"].as_str().is_some_and(|s| s.contains(channel))),
            "no check item for {channel}: {doc}"
        );
    }
}

/// The install guide (shipped in the package) tells where each secret goes,
/// and no doc asks the sysadmin to add a credential to a unit by hand.
#[test]
fn the_docs_name_every_credential_file_and_no_credential_drop_in() {
    let guide =
        std::fs::read_to_string(repo().join("docs/install-debian.md")).expect("install guide");
    for name in PACKAGED_CREDENTIALS {
        assert!(
            guide.contains(&format!("`{name}`")),
            "install-debian.md does not name {name}"
        );
    }
    for doc in [
        "docs/install-debian.md",
        "docs/social.md",
        "docs/postgresql.md",
        "README.md",
    ] {
        let text = std::fs::read_to_string(repo().join(doc)).expect("doc");
        for name in PACKAGED_CREDENTIALS {
            assert!(
                !text.contains(&format!("LoadCredential={name}")),
                "{doc} asks for a LoadCredential= drop-in for {name}"
            );
        }
    }
}
