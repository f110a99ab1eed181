//! The same commands on both backends print the same documents: one
//! sequence of sends, an update, a cancel and a drill run on SQLite and on
//! PostgreSQL, and every `--json` document and export compared field by
//! field once what must differ (alert ids, times, hashes, secrets) is
//! replaced by placeholders. A type that drifts (a number read back as
//! text, a flag as a boolean, a null as a missing key) shows here even
//! where no scenario looks at that field.

use super::*;

use regex::Regex;

/// The documents a script would read after the sequence, by command.
fn documents(backend: &Backend) -> Vec<(String, String)> {
    let p = citizens(backend);
    let first = id_of(&ok_json(&p, &meteo_send(&["--all", "--yes"])));
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
            "dalle=ora",
            "--yes",
        ],
    ));
    let cancel = id_of(&ok_json(&p, &["cancel", &first, "--yes"]));
    let drill = id_of(&ok_json(&p, &["send", "esercitazione", "--drill"]));
    let mut docs = Vec::new();
    let mut json_of = |name: &str, args: &[&str]| {
        docs.push((name.to_owned(), ok_json(&p, args).to_string()));
    };
    json_of("list", &["list"]);
    for (name, id) in [
        ("first", &first),
        ("update", &update),
        ("cancel", &cancel),
        ("drill", &drill),
    ] {
        json_of(&format!("status {name}"), &["status", id, "--deliveries"]);
        json_of(
            &format!("status {name} --failed"),
            &["status", id, "--failed"],
        );
        json_of(&format!("audit {name}"), &["audit", "--alert", id]);
    }
    json_of("audit", &["audit"]);
    json_of("subscribers", &["subscribers", "list"]);
    json_of("drafts", &["drafts", "list"]);
    json_of("coverage", &["contacts", "coverage"]);
    for format in ["json", "csv"] {
        let (code, out, err) = p.run(&["export", &first, "--format", format]);
        assert_eq!(code, 0, "{err}");
        docs.push((format!("export {format}"), out));
    }
    docs.push(("outbox sms".to_owned(), outbox_text(&p, "sms")));
    docs.push(("outbox email".to_owned(), outbox_text(&p, "email")));
    docs
}

/// An outbox file as written: alerts in the order they were sent (the
/// lines within one alert are sorted when compared: sends are concurrent).
fn outbox_text(p: &Project, channel: &str) -> String {
    std::fs::read_to_string(p.path(&format!("outbox/{channel}.jsonl"))).unwrap_or_default()
}

/// Replaces what differs by nature between two runs: alert ids (numbered
/// in order of appearance), RFC 3339 and HTTP dates, hashes, per-delivery
/// tokens, the outbox's byte offsets.
fn normalise(text: &str) -> String {
    let ids = Regex::new(r"\d{8}T\d{6}-[0-9a-f]{4}").expect("regex");
    let rules = [
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
            "<time>",
        ),
        (
            r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}",
            "<date>",
        ),
        (r"\b[0-9a-f]{64}\b", "<hash>"),
        (r"\b[0-9a-f]{32}\b", "<token>"),
        (r"\.jsonl@\d+", ".jsonl@<offset>"),
        // A Message-ID names the delivery: ids are compared apart.
        (r"(<alert \d+>)\.\d+@", "$1.<delivery>@"),
    ];
    let mut seen: Vec<String> = Vec::new();
    let mut out = ids
        .replace_all(text, |c: &regex::Captures<'_>| {
            let id = c[0].to_owned();
            let n = seen.iter().position(|s| *s == id).unwrap_or_else(|| {
                seen.push(id);
                seen.len() - 1
            });
            format!("<alert {n}>")
        })
        .into_owned();
    for (pattern, with) in rules {
        out = Regex::new(pattern)
            .expect("regex")
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

/// Row ids (`id`, `delivery_id`) as their rank among the document's ids
/// of that key: PostgreSQL's sequences leave gaps (a value is spent on a
/// row that `ON CONFLICT DO NOTHING` drops, such as the same address in two
/// lists), SQLite's rowids do not; their order is what scripts may rely on.
fn dense_ids(doc: &mut Value) {
    fn collect(v: &Value, key: &str, out: &mut Vec<i64>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == key
                        && let Some(n) = x.as_i64()
                    {
                        out.push(n);
                    }
                    collect(x, key, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, key, out)),
            _ => {}
        }
    }
    fn replace(v: &mut Value, key: &str, rank: &[i64]) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == key
                        && let Some(n) = x.as_i64()
                    {
                        let r = rank.binary_search(&n).expect("collected");
                        *x = json!(r);
                    }
                    replace(x, key, rank);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| replace(x, key, rank)),
            _ => {}
        }
    }
    for key in ["id", "delivery_id"] {
        let mut ids = Vec::new();
        collect(doc, key, &mut ids);
        ids.sort_unstable();
        ids.dedup();
        replace(doc, key, &ids);
    }
}

/// The same for a CSV export, whose first column is the delivery id.
fn dense_csv(text: &str) -> String {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a CSV header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("a CSV row").iter().map(str::to_owned).collect())
        .collect();
    let mut ids: Vec<i64> = rows.iter().filter_map(|r| r[0].parse().ok()).collect();
    ids.sort_unstable();
    let mut out = vec![header.join(",")];
    for mut r in rows {
        if let Ok(n) = r[0].parse::<i64>() {
            r[0] = ids.binary_search(&n).expect("collected").to_string();
        }
        out.push(r.join(","));
    }
    out.join("\n")
}

/// A document ready to compare: placeholders, then dense row ids.
fn comparable(name: &str, text: &str) -> Result<Value, String> {
    let text = normalise(text);
    if name == "export csv" {
        return Err(dense_csv(&text));
    }
    if name.starts_with("outbox") {
        let mut lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("an outbox line"))
            .collect();
        let mut all = Value::Array(lines.clone());
        dense_ids(&mut all);
        lines = all.as_array().cloned().unwrap_or_default();
        let mut lines: Vec<String> = lines.iter().map(Value::to_string).collect();
        lines.sort();
        return Err(lines.join("\n"));
    }
    let mut doc: Value = serde_json::from_str(&text).map_err(|_| text.clone())?;
    dense_ids(&mut doc);
    Ok(doc)
}

#[test]
fn both_backends_print_the_same_documents_for_the_same_commands() {
    let Some(cluster) = pg::Cluster::start() else {
        return;
    };
    let postgres = Backend::Postgres {
        url: cluster.url(),
        password: pg::PASSWORD.to_owned(),
        lease: "30s".to_owned(),
    };
    let sqlite = documents(&Backend::Sqlite);
    let postgres = documents(&postgres);
    assert_eq!(sqlite.len(), postgres.len());
    for ((name, s), (_, p)) in sqlite.iter().zip(&postgres) {
        match (comparable(name, s), comparable(name, p)) {
            (Ok(sv), Ok(pv)) => assert_eq!(
                sv, pv,
                "`{name}` differs:\nSQLite:     {sv}\nPostgreSQL: {pv}"
            ),
            (s, p) => assert_eq!(s, p, "`{name}` differs"),
        }
    }
}
