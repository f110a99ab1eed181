//! Contact lists as a comune really has them (SPEC §5, §12), through the real
//! binary: typed phone numbers (no SMS to a landline), files exported by
//! Excel (`;`, BOM, CRLF, Windows-1252, `.xlsx`), physical line numbers, a
//! bad row that spoils only itself, control characters in `--var`,
//! `contacts coverage`, and emails in one language.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{METEO, OUTBOX_CHANNELS, Project};
use serde_json::json;

fn send(p: &Project, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["send"];
    args.extend(METEO);
    args.extend(["--all", "--yes"]);
    args.extend(extra);
    p.json(&args)
}

fn sms_recipients(p: &Project) -> BTreeSet<String> {
    p.outbox("sms")
        .iter()
        .map(|l| l["to"].as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn sms_goes_to_mobiles_only_and_a_landline_only_row_is_valid() {
    let p = Project::new(OUTBOX_CHANNELS);
    p.write(
        "contacts/lista.csv",
        "id,name,phone,landline,email,zones,language\n\
         m1,Mobile 393,393 1234567,,,centro,it\n\
         m2,Mobile e fisso,0039 347 000 0001,0571 123456,,centro,it\n\
         f1,Fisso nel telefono,055 1234567,,fisso@example.org,centro,it\n\
         f2,Solo fisso,,(0571) 654321,,fibbiana,it\n",
    );
    let (code, out, err) = p.run(&["contacts", "check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("4 valid contact(s), 0 problem(s)"), "{out}");

    let (_, doc, _) = p.json(&["contacts", "list"]);
    let contacts = doc["contacts"].as_array().unwrap();
    let by_id = |id: &str| contacts.iter().find(|c| c["id"] == id).unwrap().clone();
    assert_eq!(by_id("m1")["phone"], "+393931234567");
    assert_eq!(by_id("m1")["phone_type"], "mobile");
    assert_eq!(by_id("m2")["landline"], "+390571123456");
    assert_eq!(by_id("f1")["phone"], "+390551234567");
    assert_eq!(by_id("f1")["phone_type"], "landline");
    assert_eq!(by_id("f2")["landline"], "+390571654321");

    let (code, doc, err) = send(&p, &["--channel", "sms", "--channel", "email"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        sms_recipients(&p),
        set(&["+393470000001", "+393931234567"]),
        "SMS only to the mobiles, in E.164"
    );
    assert_eq!(doc["channels"]["sms"]["total"], 2, "{doc}");
    // The landline in the phone column still gets its email.
    assert_eq!(p.outbox("email").len(), 1);
}

#[test]
fn excel_csv_with_bom_semicolons_crlf_and_multiline_fields_reads_as_is() {
    let p = Project::new(OUTBOX_CHANNELS);
    p.write(
        "contacts/excel.csv",
        "\u{feff}id;name;phone;zones;groups\r\n\
         e1;\"Anna Rossi\r\nVia Roma 1\";333 000 0001;\"centro;fibbiana\";cittadini\r\n\
         e2;Bruno;333 000 0002;centro;\r\n\
         \r\n\
         e3;Carla;333 12;centro;\r\n\
         e4;Dario;333 000 0004;nowhere;\r\n\
         e5;Elena;333 000 0005;fibbiana;\r\n",
    );
    let (code, out, _) = p.run(&["contacts", "check"]);
    assert_eq!(code, 2, "{out}");
    // Physical lines: the header is 1, the quoted name spans 2 and 3.
    assert!(out.contains("excel.csv:6: phone: `333 12`"), "{out}");
    assert!(
        out.contains("excel.csv:7: zones: unknown zone `nowhere`"),
        "{out}"
    );
    assert!(out.contains("3 valid contact(s), 2 problem(s)"), "{out}");

    let (_, doc, _) = p.json(&["contacts", "list"]);
    let e1 = &doc["contacts"][0];
    assert_eq!(e1["id"], "e1");
    assert_eq!(e1["zones"], json!(["centro", "fibbiana"]));
    assert_eq!(e1["name"], "Anna Rossi\r\nVia Roma 1");
}

#[test]
fn a_windows_1252_file_is_read_and_an_undefined_byte_spoils_only_its_row() {
    let p = Project::new(OUTBOX_CHANNELS);
    let mut bytes = b"id;name;phone;zones\r\n".to_vec();
    bytes.extend(b"w1;Nicol\xF2 Bianchi;333 000 0011;centro\r\n");
    bytes.extend(b"w2;Bad\x81byte;333 000 0012;centro\r\n");
    for i in 3..=10 {
        bytes.extend(format!("w{i};Persona {i};333 000 00{:02};centro\r\n", 10 + i).as_bytes());
    }
    std::fs::write(p.path("contacts/excel-1252.csv"), bytes).unwrap();

    let (code, out, _) = p.run(&["contacts", "check"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("excel-1252.csv:3: byte 0x81"), "{out}");
    assert!(out.contains("9 valid contact(s), 1 problem(s)"), "{out}");
    let (_, doc, _) = p.json(&["contacts", "list"]);
    assert_eq!(doc["contacts"][0]["name"], "Nicolò Bianchi");

    // Nothing is sent while a list is invalid...
    let mut args = vec!["send"];
    args.extend(METEO);
    args.extend(["--all", "--yes", "--channel", "sms"]);
    let (code, _, err) = p.run(&args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("excel-1252.csv:3"), "{err}");
    assert!(p.outbox("sms").is_empty());
    // ...and with --skip-invalid everyone after the bad byte is reached too.
    let (code, doc, err) = send(&p, &["--channel", "sms", "--skip-invalid"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(p.outbox("sms").len(), 9);
    let skipped = doc["alert"]["skipped_rows"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{doc}");
    assert!(
        skipped[0].as_str().unwrap().contains("excel-1252.csv:3"),
        "{skipped:?}"
    );
}

fn write_xlsx(path: &std::path::Path, rows: serde_json::Value) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/write_xlsx.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rows.to_string().as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "writing the .xlsx needs Debian's python3-openpyxl (in .ci/run)"
    );
}

#[test]
fn an_xlsx_workbook_in_contacts_dir_is_read_directly() {
    let p = Project::new(OUTBOX_CHANNELS);
    write_xlsx(
        &p.path("contacts/lista.xlsx"),
        json!([
            ["id", "name", "phone", "landline", "email", "zones", null],
            [
                "x1",
                "Anna",
                3331234567u64,
                null,
                "anna@example.org",
                "centro"
            ],
            ["x2", "Bruno", "+39 347 000 0002", null, null, "fibbiana"],
            ["x3", "Carla", "12", null, null, "centro"],
            ["x4", "Dario", null, "0571 123456", null, "centro"],
            ["x5", "Elena", "393 1234567", null, null, "centro;fibbiana"],
            [
                "x6",
                "Fabio",
                "333 000 0006",
                null,
                null,
                "centro",
                "nota a margine"
            ],
            [],
        ]),
    );
    let (code, out, _) = p.run(&["contacts", "check"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("lista.xlsx:4: phone: `12`"), "{out}");
    assert!(
        out.contains("lista.xlsx:7: a value in column 7, which has no name"),
        "{out}"
    );
    assert!(out.contains("4 valid contact(s), 2 problem(s)"), "{out}");

    let (code, _, err) = send(&p, &["--channel", "sms", "--skip-invalid"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        sms_recipients(&p),
        set(&["+393331234567", "+393470000002", "+393931234567"])
    );
}

#[test]
fn a_control_character_in_a_var_is_exit_2_naming_the_variable_and_nothing_is_sent() {
    let p = Project::new(OUTBOX_CHANNELS);
    p.contacts(
        "lista.csv",
        &["c1,Anna,333 000 0001,anna@example.org,,centro,,it,".into()],
    );
    for bad in ["idraulico\u{1b}[31m", "idraulico\u{7}", "idra\u{85}ulico"] {
        let var = format!("rischio={bad}");
        let args = [
            "send",
            "allerta-meteo",
            "--var",
            "livello=giallo",
            "--var",
            &var,
            "--var",
            "dalle=oggi",
            "--all",
            "--yes",
        ];
        let (code, _, err) = p.run(&args);
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.contains("variable `rischio`"), "{err}");
        assert!(err.contains("control character"), "{err}");
        let (code, _, err) = p.run(&[
            "preview",
            "allerta-meteo",
            "--var",
            "livello=giallo",
            "--var",
            &var,
            "--var",
            "dalle=oggi",
        ]);
        assert_eq!(code, 2, "{err}");
    }
    assert!(p.outbox("sms").is_empty() && p.outbox("email").is_empty());
    assert!(p.outbox("banner").is_empty());
    assert!(!p.path("public/feed.atom").exists());
    if p.path("allerta.db").exists() {
        assert_eq!(p.sql("SELECT COUNT(*) FROM alerts"), ["0"]);
    }
}

#[test]
fn coverage_counts_each_channel_per_zone_and_lists_who_none_reaches() {
    let p = Project::new(OUTBOX_CHANNELS);
    p.write(
        "contacts/lista.csv",
        "id,name,phone,landline,email,telegram_chat_id,zones,channels\n\
         a,Anna,333 000 0001,,anna@example.org,,centro,\n\
         b,Bruno Fisso,,0571 123456,,,centro,\n\
         c,Carla,,,carla@example.org,,fibbiana,sms\n\
         d,Dario,,,,100000009,fibbiana,\n\
         e,Elena,12,,,,centro,\n",
    );
    // No database yet: coverage reads contacts only and creates nothing.
    let (code, doc, err) = p.json(&["contacts", "coverage"]);
    assert_eq!(code, 0, "{err}");
    assert!(!p.path("allerta.db").exists());
    assert_eq!(
        doc["zones"]["centro"],
        json!({"total": 2, "channels": {"email": 1, "sms": 1, "telegram": 0}, "none": 1})
    );
    assert!(
        err.contains("lista.csv:6"),
        "the unreadable row is named: {err}"
    );

    // Subscribers of the bot count too, once per person, active ones only.
    let (code, _, err) = p.run(&[
        "send",
        "allerta-meteo",
        "--var",
        "livello=giallo",
        "--var",
        "rischio=neve",
        "--var",
        "dalle=oggi",
        "--zone",
        "centro",
        "--channel",
        "email",
        "--yes",
        "--skip-invalid",
    ]);
    assert_eq!(code, 0, "{err}");
    let conn = rusqlite::Connection::open(p.path("allerta.db")).unwrap();
    conn.execute_batch(
        "INSERT INTO subscribers (chat_id, zones, language, active, created_at, updated_at) VALUES
           ('200000001', 'fibbiana', 'it', 1, 'x', 'x'),
           ('200000002', 'fibbiana', 'it', 0, 'x', 'x'),
           ('100000009', 'fibbiana', 'it', 1, 'x', 'x');",
    )
    .unwrap();
    drop(conn);
    let (code, doc, _) = p.json(&["contacts", "coverage", "--zone", "fibbiana"]);
    assert_eq!(code, 0);
    assert_eq!(
        doc["zones"],
        json!({"fibbiana": {"total": 3, "channels": {"email": 0, "sms": 0, "telegram": 2},
                            "none": 1}})
    );

    let (code, out, _) = p.run(&["contacts", "coverage"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Reached by no channel in centro (Montelupo centro): 1"),
        "{out}"
    );
    assert!(out.contains("Bruno Fisso  id=b  "), "{out}");
    assert!(out.contains("lista.csv:3"), "{out}");
    assert!(
        out.contains("Reached by no channel in fibbiana (Fibbiana): 1"),
        "{out}"
    );
    assert!(out.contains("Carla  id=c  "), "{out}");
    assert!(out.contains("lista.csv:4"), "{out}");
    assert!(out.contains("1 row(s) could not be read"), "{out}");
}

#[test]
fn an_english_recipient_gets_the_whole_email_in_english() {
    let p = Project::new(OUTBOX_CHANNELS);
    p.contacts(
        "lista.csv",
        &[
            "it1,Anna,,anna@example.org,,centro,,it,".into(),
            "en1,John,,john@example.org,,centro,,en,".into(),
        ],
    );
    let (code, _, err) = send(&p, &["--channel", "email"]);
    assert_eq!(code, 0, "{err}");
    let mails = p.outbox("email");
    let to = |who: &str| mails.iter().find(|m| m["to"] == who).unwrap().clone();
    let en = to("john@example.org");
    assert!(
        en["text"].as_str().unwrap().contains("WEATHER WARNING"),
        "{en}"
    );
    assert!(
        en["subject"].as_str().unwrap().contains("weather warning"),
        "{en}"
    );
    assert!(
        en.get("html").is_none(),
        "an Italian HTML part for an English text: {en}"
    );
    let it = to("anna@example.org");
    assert!(it["html"].as_str().unwrap().contains("Allerta"), "{it}");
}
