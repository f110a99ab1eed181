//! Social posts (SPEC §15) with the real binary against one local server
//! playing the Facebook Graph API, Mastodon and Bluesky with their real
//! JSON, status codes and errors (tests/servers/social_server.py).

mod common;

use std::path::Path;
use std::process::Command;

use common::control as http;
use common::{Project, Server, start_server};
use serde_json::{Value, json};

const PAGE: &str = "104000000000001";
const FB_TOKEN: &str = "EAAtestpagetoken";
const MASTODON_TOKEN: &str = "mastodon-test-token";
const HANDLE: &str = "protezionecivile.comune.example.it";
const APP_PASSWORD: &str = "abcd-efgh-ijkl-mnop";
const SITE: &str = "https://www.comune.example.it/allerta/";
const SOCIAL: [&str; 3] = ["facebook", "mastodon", "bluesky"];

fn social_server() -> Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/social_server.py");
    let mut c = Command::new("/usr/bin/python3");
    c.arg(script).args(["--port", "0"]);
    start_server(c)
}

fn state(port: u16) -> Value {
    http(port, "GET", "/_test/state", None)
}

fn posts(port: u16, network: &str) -> Vec<Value> {
    state(port)[network].as_array().cloned().unwrap_or_default()
}

fn fault(port: u16, f: Value) {
    http(port, "POST", "/_test/fault", Some(&f));
}

/// A project with the three accounts on the API transport (tokens in
/// files, as a systemd credential would be) and the banner's public URL.
fn project(port: u16, fb_token: &str, mastodon_token: &str, app_password: &str) -> Project {
    let p = Project::new(&format!(
        r#"[channels.banner]
transport = "outbox"
public_url = "{SITE}"

[channels.facebook]
transport = "api"
api_url = "http://127.0.0.1:{port}/v21.0"
page_id = "{PAGE}"
access_token_file = "facebook.token"

[channels.mastodon]
transport = "api"
instance_url = "http://127.0.0.1:{port}"
access_token_file = "mastodon.token"

[channels.bluesky]
transport = "api"
service_url = "http://127.0.0.1:{port}"
identifier = "{HANDLE}"
app_password_file = "bluesky.password"
"#
    ));
    p.write("facebook.token", &format!("{fb_token}\n"));
    p.write("mastodon.token", &format!("{mastodon_token}\n"));
    p.write("bluesky.password", &format!("{app_password}\n"));
    // A citizen reached by none of these channels (check wants contacts).
    p.contacts(
        "cittadini.csv",
        &["c1,Persona,,persona@example.it,,centro,cittadini,it,".to_owned()],
    );
    p
}

fn good_project(port: u16) -> Project {
    project(port, FB_TOKEN, MASTODON_TOKEN, APP_PASSWORD)
}

/// `send allerta-meteo` to everyone on the social channels, confirmed.
fn send_social(p: &Project, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![
        "send",
        "allerta-meteo",
        "--var",
        "livello=rosso",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ore 14 di oggi",
        "--all",
        "--yes",
    ];
    for c in SOCIAL {
        args.extend_from_slice(&["--channel", c]);
    }
    args.extend_from_slice(extra);
    p.json(&args)
}

fn alert_id(status: &Value) -> String {
    status["alert"]["id"].as_str().expect("alert id").to_owned()
}

fn count(status: &Value, channel: &str, state: &str) -> u64 {
    status["channels"][channel][state].as_u64().unwrap_or(0)
}

#[test]
fn an_alert_is_one_public_post_on_each_network_with_the_link_to_its_page() {
    let server = social_server();
    let p = good_project(server.port);
    let (code, status, err) = send_social(&p, &[]);
    assert_eq!(code, 0, "{err}");
    let id = alert_id(&status);
    let link = format!("{SITE}?alert={id}");
    for c in SOCIAL {
        assert_eq!(count(&status, c, "delivered"), 1, "{c}: {status}");
    }

    let fb = posts(server.port, "facebook");
    assert_eq!(fb.len(), 1, "{fb:?}");
    let message = fb[0]["message"].as_str().expect("message");
    assert!(
        message.starts_with("⚠️ Allerta meteo ROSSO per rischio idraulico"),
        "{message}"
    );
    assert!(message.ends_with(&format!("\n\n{link}")), "{message}");
    assert_eq!(fb[0]["link"], link.as_str());

    let toots = posts(server.port, "mastodon");
    assert_eq!(toots.len(), 1);
    assert_eq!(toots[0]["text"], message, "the same text on every network");
    assert_eq!(toots[0]["visibility"], "public");
    assert_eq!(toots[0]["in_reply_to_id"], Value::Null);
    let token = p.sql(&format!(
        "SELECT token FROM deliveries WHERE alert_id = '{id}' AND channel = 'mastodon'"
    ));
    assert_eq!(
        toots[0]["idempotency_key"],
        token[0].as_str(),
        "Idempotency-Key is the delivery's token"
    );

    let records = posts(server.port, "bluesky");
    assert_eq!(records.len(), 1);
    let record = &records[0]["value"];
    assert_eq!(record["text"], message);
    assert_eq!(record["langs"], json!(["it"]));
    let facet = &record["facets"][0];
    assert_eq!(facet["features"][0]["uri"], link.as_str());
    assert_eq!(
        facet["features"][0]["$type"],
        "app.bsky.richtext.facet#link"
    );
    let rkey = records[0]["rkey"].as_str().expect("rkey");
    assert_eq!(rkey.len(), 13, "a TID");

    // Each post's id is the delivery's provider id (Bluesky: uri and cid).
    let ids = p.sql(&format!(
        "SELECT channel || '=' || provider_id FROM deliveries WHERE alert_id = '{id}' ORDER BY channel"
    ));
    assert_eq!(
        ids,
        [
            format!(
                "bluesky={} {}",
                records[0]["uri"].as_str().unwrap_or(""),
                records[0]["cid"].as_str().unwrap_or("")
            ),
            format!("facebook={}", fb[0]["id"].as_str().unwrap_or("")),
            format!("mastodon={}", toots[0]["id"].as_str().unwrap_or("")),
        ]
    );
}

#[test]
fn updates_and_cancels_reply_in_the_thread_of_the_first_post() {
    let server = social_server();
    let p = good_project(server.port);
    let (code, status, err) = send_social(&p, &[]);
    assert_eq!(code, 0, "{err}");
    let first = alert_id(&status);
    let (code, update, err) = p.json(&[
        "update",
        &first,
        "allerta-meteo",
        "--var",
        "livello=arancione",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ore 18 di oggi",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    let update_id = alert_id(&update);
    let (code, cancel, err) = p.json(&["cancel", &first, "--yes"]);
    assert_eq!(code, 0, "{err}");
    let cancel_id = alert_id(&cancel);

    // Mastodon: the update replies to the first toot, the cancel to the update.
    let toots = posts(server.port, "mastodon");
    assert_eq!(toots.len(), 3, "{toots:?}");
    assert_eq!(toots[1]["in_reply_to_id"], toots[0]["id"]);
    assert_eq!(toots[2]["in_reply_to_id"], toots[1]["id"]);
    assert!(
        toots[1]["text"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("?alert={update_id}"))
    );
    assert!(
        toots[2]["text"]
            .as_str()
            .unwrap_or("")
            .starts_with("✅ Cessata allerta"),
        "{toots:?}"
    );

    // Bluesky: root is always the first post, parent the latest.
    let records = posts(server.port, "bluesky");
    assert_eq!(records.len(), 3);
    let strong = |r: &Value| json!({"uri": r["uri"], "cid": r["cid"]});
    assert_eq!(records[1]["value"]["reply"]["root"], strong(&records[0]));
    assert_eq!(records[1]["value"]["reply"]["parent"], strong(&records[0]));
    assert_eq!(records[2]["value"]["reply"]["root"], strong(&records[0]));
    assert_eq!(records[2]["value"]["reply"]["parent"], strong(&records[1]));

    // Facebook: one Page post; the update and the cancel are its comments.
    let fb = posts(server.port, "facebook");
    assert_eq!(fb.len(), 1, "{fb:?}");
    let comments = fb[0]["comments"].as_array().expect("comments");
    assert_eq!(comments.len(), 2);
    assert!(
        comments[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("?alert={update_id}"))
    );
    assert!(
        comments[1]["message"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("?alert={cancel_id}"))
    );
}

#[test]
fn refused_credentials_fail_the_post_at_once_saying_which_key_to_fix() {
    let server = social_server();
    let p = project(server.port, "EAAexpired", "revoked", "wrong-password");
    let (code, status, err) = send_social(&p, &[]);
    assert_eq!(code, 3, "the alert went out elsewhere, these failed: {err}");
    for c in SOCIAL {
        assert_eq!(count(&status, c, "failed"), 1, "{c}: {status}");
    }
    let id = alert_id(&status);
    let errors = p.sql(&format!(
        "SELECT channel || ': ' || last_error FROM deliveries WHERE alert_id = '{id}' ORDER BY channel"
    ));
    assert!(
        errors[0].contains("channels.bluesky.app_password"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("code 190") && errors[1].contains("channels.facebook.access_token"),
        "{errors:?}"
    );
    assert!(
        errors[2].contains("401") && errors[2].contains("channels.mastodon.access_token"),
        "{errors:?}"
    );
    let attempts = p.sql(&format!(
        "SELECT attempts FROM deliveries WHERE alert_id = '{id}'"
    ));
    assert_eq!(
        attempts,
        ["1", "1", "1"],
        "a refused token is never retried"
    );
    for network in SOCIAL {
        assert!(posts(server.port, network).is_empty());
    }
}

#[test]
fn an_instance_that_refuses_the_length_with_422_fails_the_post_permanently() {
    let server = social_server();
    // This instance allows 100 characters, not Mastodon's default 500.
    http(
        server.port,
        "POST",
        "/_test/config",
        Some(&json!({"mastodon_max": 100})),
    );
    let p = good_project(server.port);
    let (code, status, err) = send_social(&p, &["--channel", "mastodon"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(count(&status, "mastodon", "failed"), 1, "{status}");
    let id = alert_id(&status);
    let error = p.sql(&format!(
        "SELECT attempts || ' ' || last_error FROM deliveries WHERE alert_id = '{id}' AND channel = 'mastodon'"
    ));
    assert!(
        error[0].starts_with("1 ")
            && error[0].contains("422")
            && error[0].contains("character limit of 100"),
        "{error:?}"
    );
    assert!(posts(server.port, "mastodon").is_empty());
}

#[test]
fn a_429_waits_for_the_reset_header_then_posts_once() {
    let server = social_server();
    fault(
        server.port,
        json!({"network": "mastodon", "kind": "rate_limit", "reset_in": 1}),
    );
    fault(
        server.port,
        json!({"network": "bluesky", "kind": "rate_limit", "reset_in": 1}),
    );
    let p = good_project(server.port);
    let (code, status, err) = send_social(&p, &[]);
    assert_eq!(code, 0, "{err}");
    for c in ["mastodon", "bluesky"] {
        assert_eq!(count(&status, c, "delivered"), 1, "{c}: {status}");
        assert_eq!(posts(server.port, c).len(), 1, "{c}");
    }
    let id = alert_id(&status);
    let attempts = p.sql(&format!(
        "SELECT a.outcome || ' ' || COALESCE(a.detail, '') FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
         WHERE d.alert_id = '{id}' AND d.channel = 'mastodon' ORDER BY a.id"
    ));
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(
        attempts[0].starts_with("transient") && attempts[0].contains("429"),
        "{attempts:?}"
    );
    // The retry waited for X-RateLimit-Reset (1 s), not the 200 ms backoff.
    let times = p.sql(&format!(
        "SELECT a.at FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
         WHERE d.alert_id = '{id}' AND d.channel = 'bluesky' ORDER BY a.id"
    ));
    let gap: i64 = times[1].parse::<i64>().unwrap_or(0) - times[0].parse::<i64>().unwrap_or(0);
    assert!(gap >= 900, "retried after {gap} ms, before the reset");
}

#[test]
fn a_server_error_is_retried_and_the_post_made_once() {
    let server = social_server();
    for network in SOCIAL {
        fault(
            server.port,
            json!({"network": network, "kind": "status", "status": 503}),
        );
    }
    let p = good_project(server.port);
    let (code, status, err) = send_social(&p, &[]);
    assert_eq!(code, 0, "{err}");
    for c in SOCIAL {
        assert_eq!(count(&status, c, "delivered"), 1, "{c}: {status}");
        assert_eq!(posts(server.port, c).len(), 1, "{c}");
    }
    let id = alert_id(&status);
    let attempts = p.sql(&format!(
        "SELECT attempts FROM deliveries WHERE alert_id = '{id}' AND channel != 'banner'"
    ));
    assert_eq!(attempts, ["2", "2", "2"]);
}

#[test]
fn a_connection_dropped_after_the_post_was_created_never_makes_a_second_post() {
    let server = social_server();
    for network in SOCIAL {
        fault(
            server.port,
            json!({"network": network, "kind": "drop_after_create"}),
        );
    }
    let p = good_project(server.port);
    let (code, status, err) = send_social(&p, &[]);
    assert_eq!(code, 0, "{err}");
    for c in SOCIAL {
        assert_eq!(count(&status, c, "delivered"), 1, "{c}: {status}");
        assert_eq!(posts(server.port, c).len(), 1, "{c}: exactly one post");
    }
    let calls = state(server.port)["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let dropped = calls.iter().filter(|c| c["status"] == "dropped").count();
    assert_eq!(dropped, 3, "each network lost one answer: {calls:?}");
    // The retry found the post: Mastodon through the Idempotency-Key,
    // Bluesky through getRecord, Facebook through the Page's feed.
    let looked_up = |network: &str, path: &str| {
        calls
            .iter()
            .filter(|c| c["network"] == network && c["path"].as_str().unwrap_or("").contains(path))
            .count()
    };
    assert_eq!(looked_up("bluesky", "getRecord"), 2, "{calls:?}");
    assert_eq!(looked_up("bluesky", "createRecord"), 1, "{calls:?}");
    assert_eq!(
        looked_up("facebook", "/feed"),
        3,
        "two reads, one write: {calls:?}"
    );
    // The provider id recorded is the post that was made.
    let id = alert_id(&status);
    let fb_id = p.sql(&format!(
        "SELECT provider_id FROM deliveries WHERE alert_id = '{id}' AND channel = 'facebook'"
    ));
    assert_eq!(
        fb_id[0],
        posts(server.port, "facebook")[0]["id"]
            .as_str()
            .unwrap_or("")
    );
}

#[test]
fn drills_and_tests_are_never_posted() {
    let server = social_server();
    let p = good_project(server.port);
    p.contacts(
        "staff.csv",
        &["s1,Staff,,staff@comune.example.it,,centro,esercitazione,it,".to_owned()],
    );
    for (flag, status) in [("--drill", "Exercise"), ("--test", "Test")] {
        let mut args = vec![
            "send",
            "allerta-meteo",
            "--var",
            "livello=rosso",
            "--var",
            "rischio=idraulico",
            "--var",
            "dalle=ora",
            "--all",
            "--yes",
            flag,
            "--channel",
            "banner",
        ];
        for c in SOCIAL {
            args.extend_from_slice(&["--channel", c]);
        }
        let (code, _, err) = p.run(&args);
        assert_eq!(code, 0, "{flag}: {err}");
        for c in SOCIAL {
            assert!(
                err.contains(&format!(
                    "note: not sent on {c}: {status} messages are never posted on social accounts"
                )),
                "{flag}: {err}"
            );
        }
        let (_, report, _) = p.json(&["status"]);
        assert_eq!(report["alert"]["status"], status);
        for c in SOCIAL {
            assert_eq!(count(&report, c, "total"), 0, "{flag} {c}: {report}");
        }
        assert_eq!(
            count(&report, "banner", "total"),
            1,
            "the drill banner is still written"
        );
    }
    // Only the social channels: nothing to send, said why, exit 2.
    let mut args = vec![
        "send",
        "allerta-meteo",
        "--var",
        "livello=rosso",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ora",
        "--drill",
        "--yes",
    ];
    for c in SOCIAL {
        args.extend_from_slice(&["--channel", c]);
    }
    let (code, _, err) = p.run(&args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("Exercise messages are never posted on social accounts"),
        "{err}"
    );
    let calls = state(server.port)["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(calls.is_empty(), "no social API was even called: {calls:?}");
}

/// A project whose templates directory holds one template with this
/// `social` text.
fn project_with_social_text(port: u16, social: &str) -> Project {
    let p = good_project(port);
    let config = std::fs::read_to_string(p.path("allerta.toml")).expect("config");
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let config = config.replace(
        &format!("templates_dir = \"{}\"", templates.display()),
        "templates_dir = \"templates\"",
    );
    p.write("allerta.toml", &config);
    p.write(
        "templates/avviso.toml",
        &format!(
            r#"title = "Avviso"
event = "Avviso"
category = "Safety"
severity = "Minor"
urgency = "Expected"
certainty = "Likely"

[it]
headline = "Avviso"
sms = "Avviso"
banner = "Avviso"
social = """{social}"""
"#
        ),
    );
    p
}

#[test]
fn templates_check_and_send_count_each_network_as_it_counts() {
    let server = social_server();
    // 440 graphemes of text (with an accented letter written as e + U+0300)
    // and a 120-character URL: Mastodon counts 440 + 23 + the link = fine,
    // Bluesky counts every grapheme: too long.
    let url = format!("https://www.comune.example.it/{}", "a".repeat(90));
    let text = format!("{} {url}", "e\u{300}".repeat(439));
    let p = project_with_social_text(server.port, &text);
    let (code, out, err) = p.run(&["templates", "check"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("FAIL avviso"), "{out}");
    assert!(
        out.contains("[it] bluesky:") && out.contains("exceed bluesky's limit of 300"),
        "{out}"
    );
    assert!(
        !out.contains("mastodon:"),
        "Mastodon counts the URL as 23: {out}"
    );
    let (code, _, err) = p.run(&["send", "avviso", "--all", "--yes", "--channel", "bluesky"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("template `avviso`") && err.contains("[it] bluesky"),
        "{err}"
    );

    // 478 graphemes + the link counted as 23: over Mastodon's 500.
    let p = project_with_social_text(server.port, &"à".repeat(478));
    let (code, out, _) = p.run(&["templates", "check"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("[it] mastodon: 503 characters (graphemes, each URL counted as 23) exceed mastodon's limit of 500 (with the link to the alert page)"),
        "{out}"
    );
    let (code, _, err) = p.run(&["send", "avviso", "--all", "--yes", "--channel", "mastodon"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("[it] mastodon"), "{err}");
    // A social text that does not fit never blocks the other channels.
    let (code, _, err) = p.run(&["send", "avviso", "--all", "--yes", "--channel", "banner"]);
    assert_eq!(code, 0, "{err}");
    let calls = state(server.port)["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(calls.is_empty(), "nothing left: {calls:?}");
}

#[test]
fn check_signs_in_to_each_account_without_posting() {
    let server = social_server();
    let p = good_project(server.port);
    let (code, report, err) = p.json(&["check"]);
    let items = report["items"].as_array().cloned().unwrap_or_default();
    let item = |name: &str| {
        items
            .iter()
            .find(|i| i["item"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} item in {report}"))
    };
    assert_eq!(code, 0, "{report}\n{err}");
    assert_eq!(item("facebook")["ok"], true);
    assert!(
        item("facebook")["detail"]
            .as_str()
            .unwrap_or("")
            .contains("Comune di Prova")
    );
    assert!(
        item("mastodon")["detail"]
            .as_str()
            .unwrap_or("")
            .contains("@protezionecivile")
    );
    assert!(
        item("bluesky")["detail"]
            .as_str()
            .unwrap_or("")
            .contains("did:plc:")
    );
    for network in SOCIAL {
        assert!(
            posts(server.port, network).is_empty(),
            "{network}: nothing posted"
        );
    }

    let bad = project(server.port, "EAAexpired", "revoked", "wrong");
    let (code, report, _) = bad.json(&["check"]);
    assert_eq!(code, 1, "{report}");
    for network in SOCIAL {
        let i = report["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["item"] == network).cloned())
            .unwrap_or_default();
        assert_eq!(i["ok"], false, "{network}: {i}");
        assert!(
            i["fix"].as_str().unwrap_or("").contains("docs/social.md"),
            "{i}"
        );
    }
}

#[test]
fn a_send_killed_after_the_posts_were_made_resumes_without_a_second_post() {
    let server = social_server();
    for network in SOCIAL {
        fault(
            server.port,
            json!({"network": network, "kind": "hang_after_create", "seconds": 20}),
        );
    }
    let p = good_project(server.port);
    let mut args = vec![
        "send",
        "allerta-meteo",
        "--var",
        "livello=rosso",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ora",
        "--all",
        "--yes",
    ];
    for c in SOCIAL {
        args.extend_from_slice(&["--channel", c]);
    }
    let mut child = p
        .cmd()
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start send");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while SOCIAL.iter().any(|n| posts(server.port, n).is_empty()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the posts were never made"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The posts are made, their answers not yet back: the process dies.
    child.kill().expect("kill send");
    child.wait().expect("reap send");
    let states = p.sql("SELECT state FROM deliveries WHERE channel != 'banner'");
    assert_eq!(states, ["sending", "sending", "sending"], "outcome unknown");
    let id = p.sql("SELECT id FROM alerts")[0].clone();

    let (code, _, err) = p.run(&["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{err}");
    for network in SOCIAL {
        assert_eq!(
            posts(server.port, network).len(),
            1,
            "{network}: no second post"
        );
    }
    let states = p.sql("SELECT state FROM deliveries WHERE channel != 'banner'");
    assert_eq!(states, ["delivered", "delivered", "delivered"]);
    let fb = p.sql("SELECT provider_id FROM deliveries WHERE channel = 'facebook'");
    assert_eq!(
        fb[0],
        posts(server.port, "facebook")[0]["id"]
            .as_str()
            .unwrap_or("")
    );
}

#[test]
fn preview_shows_each_post_length_as_the_network_counts_it() {
    let server = social_server();
    let p = good_project(server.port);
    let (code, out, err) = p.json(&[
        "preview",
        "allerta-meteo",
        "--var",
        "livello=rosso",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ora",
        "--lang",
        "it",
    ]);
    assert_eq!(code, 0, "{err}");
    let channels = &out["languages"]["it"]["channels"];
    let text = channels["bluesky"]["text"].as_str().expect("bluesky text");
    let link = format!("{SITE}?alert=20260101T000000-0000");
    let post = format!("{text}\n\n{link}");
    // "⚠️" is two code points (U+26A0 U+FE0F) but one grapheme.
    assert_eq!(
        channels["bluesky"]["post"]["length"],
        post.chars().count() - 1
    );
    assert_eq!(channels["bluesky"]["post"]["max"], 300);
    let mastodon = channels["mastodon"]["post"]["length"]
        .as_u64()
        .expect("length");
    assert_eq!(
        mastodon as usize,
        channels["bluesky"]["post"]["length"].as_u64().unwrap_or(0) as usize - link.len() + 23
    );
    assert!(posts(server.port, "mastodon").is_empty());
}

#[test]
fn a_follow_up_whose_first_post_was_deleted_is_posted_on_its_own() {
    let server = social_server();
    let p = good_project(server.port);
    let (code, status, err) = send_social(&p, &[]);
    assert_eq!(code, 0, "{err}");
    let first = alert_id(&status);
    // Someone at the comune deleted the posts by hand.
    for network in ["facebook", "mastodon"] {
        http(
            server.port,
            "POST",
            "/_test/delete",
            Some(&json!({"network": network})),
        );
    }
    let (code, update, err) = p.json(&[
        "update",
        &first,
        "allerta-meteo",
        "--var",
        "livello=arancione",
        "--var",
        "rischio=idraulico",
        "--var",
        "dalle=ore 18 di oggi",
        "--yes",
    ]);
    let errors = p.sql(
        "SELECT channel || ': ' || COALESCE(last_error, '') FROM deliveries WHERE state = 'failed'",
    );
    assert_eq!(code, 0, "{err} {errors:?}");
    let update_id = alert_id(&update);
    for c in ["facebook", "mastodon"] {
        assert_eq!(count(&update, c, "delivered"), 1, "{c}: {update}");
    }
    let toots = posts(server.port, "mastodon");
    assert_eq!(toots.len(), 1, "{toots:?}");
    assert_eq!(toots[0]["in_reply_to_id"], Value::Null);
    assert!(
        toots[0]["text"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("?alert={update_id}"))
    );
    let fb = posts(server.port, "facebook");
    assert_eq!(fb.len(), 1, "{fb:?}");
    assert_eq!(fb[0]["link"], format!("{SITE}?alert={update_id}").as_str());
}
