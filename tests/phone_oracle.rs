//! Phone numbers agree with libphonenumber (SPEC §12). The oracle is Debian's
//! python3-phonenumbers: `tests/oracle/phone_cases.py` generates (seeded) a
//! few thousand numbers across Italy's whole numbering plan and some foreign
//! ones, in every style people write them, with libphonenumber's verdict on
//! each (`parse(s, "IT")` + `is_valid_number`, the E.164 and the type). The
//! real binary then reads them all from a contact file (`contacts list
//! --json`), and every accept/reject, E.164 and mobile/landline type must be
//! the same.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::Project;

const PYTHON: &str = "/usr/bin/python3";

fn oracle_cases() -> Option<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/phone_cases.py");
    let probe = Command::new(PYTHON)
        .args(["-c", "import phonenumbers"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("CI").is_err(),
            "python3-phonenumbers (Debian) is required under CI: apt-get install python3-phonenumbers"
        );
        eprintln!("SKIPPED: python3-phonenumbers is not installed");
        return None;
    }
    let out = Command::new(PYTHON)
        .args([script, "20261201"])
        .output()
        .expect("run the oracle");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("oracle JSON"))
}

/// input → E.164 for the known metadata differences of this oracle version.
fn drift(version: &str) -> HashMap<String, String> {
    let text = include_str!("oracle/metadata_drift.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut parts = l.split('\t');
            let (v, input, e164) = (parts.next()?, parts.next()?, parts.next()?);
            (v == version).then(|| (input.to_owned(), e164.to_owned()))
        })
        .collect()
}

#[test]
fn every_number_is_judged_as_libphonenumber_judges_it() {
    let Some(oracle) = oracle_cases() else { return };
    let version = oracle["version"].as_str().expect("version");
    let cases = oracle["cases"].as_array().expect("cases");
    assert!(cases.len() > 3000, "only {} cases", cases.len());
    let accepted = cases.iter().filter(|c| !c["e164"].is_null()).count();
    assert!(
        accepted > 1000 && cases.len() - accepted > 1000,
        "{accepted} accepted"
    );

    let p = Project::new("[channels.sms]\ntransport = \"outbox\"\n");
    let mut csv = String::from("id,name,phone,zones\n");
    for (i, c) in cases.iter().enumerate() {
        let input = c["input"].as_str().expect("input");
        assert!(!input.contains(['"', ',', '\n']), "{input:?}");
        csv.push_str(&format!("n{i},Numero {i},{input},centro\n"));
    }
    p.write("contacts/numeri.csv", &csv);
    let (_, doc, err) = p.json(&["contacts", "list"]);
    let mut got: HashMap<String, (String, String)> = HashMap::new();
    for c in doc["contacts"].as_array().expect("contacts") {
        got.insert(
            c["id"].as_str().unwrap().to_owned(),
            (
                c["phone"].as_str().unwrap().to_owned(),
                c["phone_type"].as_str().unwrap().to_owned(),
            ),
        );
    }
    // Every rejected row is a file:line error naming the phone.
    let problems = err.lines().filter(|l| l.contains("numeri.csv:")).count();
    assert_eq!(problems + got.len(), cases.len(), "{err}");

    let drift = drift(version);
    let mut wrong = Vec::new();
    let mut stale = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let input = c["input"].as_str().unwrap();
        let want = c["e164"]
            .as_str()
            .map(|e| (e.to_owned(), c["kind"].as_str().unwrap().to_owned()));
        let ours = got.get(&format!("n{i}")).cloned();
        if let Some(newer) = drift.get(input) {
            if ours.as_ref().map(|o| &o.0) != Some(newer) {
                wrong.push(format!(
                    "{input:?} (metadata drift entry): want {newer}, got {ours:?}"
                ));
            }
            if ours.as_ref().map(|o| &o.0) == want.as_ref().map(|w| &w.0) {
                stale.push(input.to_owned());
            }
            continue;
        }
        if ours != want {
            wrong.push(format!(
                "{input:?}: libphonenumber {want:?}, allerta {ours:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} numbers judged differently from libphonenumber {version}:\n{}",
        wrong.len(),
        cases.len(),
        wrong
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        stale.is_empty(),
        "stale entries in metadata_drift.txt: {stale:?}"
    );
}
