//! What the public sees: the web files (banner, feed, CAP) and social
//! posts, across a thread.

use super::*;

// ---------------------------------------------------------------------
// The public web files (banner, Atom feed, CAP) across a thread
// ---------------------------------------------------------------------

/// The alert ids in a published banner file, in its order.
pub fn banner_ids(p: &Project, file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(p.path(&format!("public/{file}")))
        .unwrap_or_else(|e| panic!("public/{file}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("banner JSON");
    let mut ids: Vec<String> = doc["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.dedup();
    ids
}

pub fn feed(p: &Project) -> String {
    std::fs::read_to_string(p.path("public/feed.atom")).expect("public/feed.atom")
}

pub fn cap_href(id: &str) -> String {
    format!("https://www.comune.example.it/allerta/cap/{id}.xml")
}

pub fn the_public_files_follow_sends_updates_cancels_and_keep_drills_apart(backend: &Backend) {
    let p = Project::with_database(
        r#"
[channels.sms]
transport = "outbox"
[channels.banner]
transport = "files"
output_dir = "public"
public_url = "https://www.comune.example.it/allerta/"
"#,
        backend,
    );
    p.contacts(
        "c.csv",
        &[
            "a1,Anna,+39 333 1000001,,,centro,cittadini,it,".into(),
            "a2,Bruno,+39 333 1000002,,,fibbiana,esercitazione,it,".into(),
        ],
    );
    let a = id_of(&ok_json(
        &p,
        &[
            "send",
            "chiusura-scuole",
            "--var",
            "data=domani",
            "--var",
            "motivo=neve",
            "--all",
            "--yes",
        ],
    ));
    let b = id_of(&ok_json(
        &p,
        &[
            "send",
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
    ));
    let mut live = banner_ids(&p, "banner.json");
    live.sort();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(live, both);
    for id in [&a, &b] {
        assert!(feed(&p).contains(&cap_href(id)), "{id} not in the feed");
        assert!(p.path(&format!("public/cap/{id}.xml")).exists());
    }

    // An update replaces its alert everywhere; a cancel removes it and
    // announces the CAP Cancel.
    let update = id_of(&ok_json(
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
    ));
    let mut live = banner_ids(&p, "banner.json");
    live.sort();
    let mut expected = vec![a.clone(), update.clone()];
    expected.sort();
    assert_eq!(live, expected);
    assert!(feed(&p).contains(&cap_href(&update)));
    assert!(
        !feed(&p).contains(&cap_href(&b)),
        "the updated alert left the feed"
    );
    let cancel = id_of(&ok_json(&p, &["cancel", &a, "--yes"]));
    assert_eq!(
        banner_ids(&p, "banner.json"),
        [update.as_str()],
        "a Cancel is never a banner"
    );
    assert!(
        !feed(&p).contains(&cap_href(&a)),
        "the cancelled alert left the feed"
    );
    assert!(
        feed(&p).contains(&cap_href(&cancel)),
        "the CAP Cancel is announced"
    );

    // A drill goes to the drill banner only.
    let drill = id_of(&ok_json(&p, &["send", "esercitazione", "--drill"]));
    assert_eq!(banner_ids(&p, "drill-banner.json"), [drill.as_str()]);
    assert_eq!(banner_ids(&p, "banner.json"), [update]);
    assert!(!feed(&p).contains(&drill), "a drill never reaches the feed");
    audit_is_whole(&p, &["send", "send", "update", "cancel", "send"]);
}
// ---------------------------------------------------------------------
// Social posts: a thread per alert (local Graph API / Mastodon / Bluesky)
// ---------------------------------------------------------------------

pub fn social_posts(port: u16, network: &str) -> Vec<Value> {
    tg_http(port, "GET", "/_test/state", None)[network]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub fn social_updates_and_cancels_reply_in_the_thread_of_the_first_post(backend: &Backend) {
    let mut c = Command::new("/usr/bin/python3");
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/servers/social_server.py"
    ))
    .args(["--port", "0"]);
    let server = start_server(c);
    let port = server.port;
    let p = Project::with_database(
        &format!(
            r#"[channels.banner]
transport = "outbox"
public_url = "https://www.comune.example.it/allerta/"

[channels.facebook]
transport = "api"
api_url = "http://127.0.0.1:{port}/v21.0"
page_id = "104000000000001"
access_token_file = "facebook.token"

[channels.mastodon]
transport = "api"
instance_url = "http://127.0.0.1:{port}"
access_token_file = "mastodon.token"

[channels.bluesky]
transport = "api"
service_url = "http://127.0.0.1:{port}"
identifier = "protezionecivile.comune.example.it"
app_password_file = "bluesky.password"
"#
        ),
        backend,
    );
    p.write("facebook.token", "EAAtestpagetoken\n");
    p.write("mastodon.token", "mastodon-test-token\n");
    p.write("bluesky.password", "abcd-efgh-ijkl-mnop\n");
    p.contacts(
        "cittadini.csv",
        &["c1,Persona,,persona@example.it,,centro,cittadini,it,".to_owned()],
    );
    let mut send = meteo_send(&["--all", "--yes"]);
    for network in ["facebook", "mastodon", "bluesky"] {
        send.extend_from_slice(&["--channel", network]);
    }
    let first = ok_json(&p, &send);
    for network in ["facebook", "mastodon", "bluesky"] {
        assert_eq!(
            first["channels"][network]["delivered"], 1,
            "{network}: {first}"
        );
    }
    let first = id_of(&first);
    let update = id_of(&ok_json(
        &p,
        &[
            "update",
            &first,
            "allerta-meteo",
            "--var",
            "livello=rosso",
            "--var",
            "rischio=idraulico",
            "--var",
            "dalle=ore 18 di oggi",
            "--yes",
        ],
    ));
    let cancel = id_of(&ok_json(&p, &["cancel", &first, "--yes"]));

    // Mastodon: the update replies to the first toot, the cancel to the update.
    let toots = social_posts(port, "mastodon");
    assert_eq!(toots.len(), 3, "{toots:?}");
    assert_eq!(toots[1]["in_reply_to_id"], toots[0]["id"], "{toots:?}");
    assert_eq!(toots[2]["in_reply_to_id"], toots[1]["id"], "{toots:?}");
    assert!(
        toots[1]["text"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("?alert={update}")),
        "{toots:?}"
    );
    // Bluesky: root is always the first post, parent the latest.
    let records = social_posts(port, "bluesky");
    assert_eq!(records.len(), 3, "{records:?}");
    let strong = |r: &Value| json!({"uri": r["uri"], "cid": r["cid"]});
    assert_eq!(records[1]["value"]["reply"]["root"], strong(&records[0]));
    assert_eq!(records[1]["value"]["reply"]["parent"], strong(&records[0]));
    assert_eq!(records[2]["value"]["reply"]["root"], strong(&records[0]));
    assert_eq!(records[2]["value"]["reply"]["parent"], strong(&records[1]));
    // Facebook: one Page post; the update and the cancel are its comments.
    let fb = social_posts(port, "facebook");
    assert_eq!(fb.len(), 1, "{fb:?}");
    let comments: Vec<&str> = fb[0]["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| c["message"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(comments.len(), 2, "{fb:?}");
    assert!(
        comments[0].contains(&format!("?alert={update}")),
        "{comments:?}"
    );
    assert!(
        comments[1].contains(&format!("?alert={cancel}")),
        "{comments:?}"
    );
    audit_is_whole(&p, &["send", "update", "cancel"]);
}
