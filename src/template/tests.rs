use super::*;

const METEO: &str = r#"
title = "Allerta meteo"
event = "Allerta meteo"
category = "Met"
severity = "{% if livello == 'rosso' %}Extreme{% elif livello == 'arancione' %}Severe{% else %}Moderate{% endif %}"
urgency = "Expected"
certainty = "Likely"
expires_after = "36h"

[variables.livello]
description = "Codice colore"
allowed = ["giallo", "arancione", "rosso"]
example = "arancione"

[variables.rischio]
description = "Tipo di rischio"
example = "idraulico"

[variables.alle]
description = "Fine validità"
default = "fino a nuovo avviso"

[it]
headline = "Allerta {{ livello }} per rischio {{ rischio }}"
sms = "Allerta {{ livello|upper }} rischio {{ rischio }}, {{ alle }}."
telegram = "<b>Allerta {{ livello }}</b> per rischio {{ rischio }}"
email_text = "Allerta {{ livello }} per rischio {{ rischio }}."
banner = "Allerta {{ livello }} per rischio {{ rischio }}"

[en]
headline = "{{ livello }} alert: {{ rischio }}"
"#;

fn meteo() -> Template {
    Template::parse(
        "allerta-meteo",
        Path::new("templates/allerta-meteo.toml"),
        METEO,
    )
    .unwrap()
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const PLAIN: RenderOptions<'static> = RenderOptions {
    default_language: "it",
    prefix: None,
};

#[test]
fn a_misspelled_variable_is_named_with_a_suggestion() {
    let err = meteo()
        .resolve_vars(&vars(&[("livelo", "rosso"), ("rischio", "idraulico")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variable `livelo`"), "{err}");
    assert!(err.contains("did you mean `livello`"), "{err}");
    assert!(err.contains("missing required variable `livello`"), "{err}");
}

#[test]
fn values_outside_allowed_are_refused_and_defaults_fill_in() {
    let t = meteo();
    let err = t
        .resolve_vars(&vars(&[("livello", "viola"), ("rischio", "x")]))
        .unwrap_err();
    assert!(err.to_string().contains("`viola` is not allowed"));
    let ok = t
        .resolve_vars(&vars(&[("livello", "rosso"), ("rischio", "vento")]))
        .unwrap();
    assert_eq!(ok["alle"], "fino a nuovo avviso");
}

#[test]
fn metadata_is_templated() {
    let t = meteo();
    let v = t
        .resolve_vars(&vars(&[("livello", "rosso"), ("rischio", "vento")]))
        .unwrap();
    assert_eq!(t.render(&v, &PLAIN).unwrap().meta.severity, "Extreme");
}

#[test]
fn telegram_escapes_variables_but_sms_does_not() {
    let t = meteo();
    let v = t
        .resolve_vars(&vars(&[("livello", "rosso"), ("rischio", "<script> & co")]))
        .unwrap();
    let r = t.render(&v, &PLAIN).unwrap();
    let tg = &r.text(ChannelId::Telegram, "it").unwrap().text;
    assert!(tg.starts_with("<b>Allerta rosso</b>"), "{tg}");
    assert!(tg.contains("&lt;script&gt; &amp; co"), "{tg}");
    let sms = &r.text(ChannelId::Sms, "it").unwrap().text;
    assert!(sms.contains("<script> & co"), "{sms}");
}

#[test]
fn missing_language_fields_fall_back_to_the_default_language() {
    let t = meteo();
    let v = t
        .resolve_vars(&vars(&[("livello", "giallo"), ("rischio", "neve")]))
        .unwrap();
    let r = t.render(&v, &PLAIN).unwrap();
    assert_eq!(r.info["en"].headline, "giallo alert: neve");
    assert_eq!(
        r.text(ChannelId::Sms, "en").unwrap().text,
        "Allerta GIALLO rischio neve, fino a nuovo avviso."
    );
    // A language the template lacks entirely falls back too.
    assert!(r.text(ChannelId::Sms, "de").is_some());
}

#[test]
fn drill_prefix_reaches_every_channel_and_the_subject() {
    let t = meteo();
    let v = t
        .resolve_vars(&vars(&[("livello", "giallo"), ("rischio", "neve")]))
        .unwrap();
    let opts = RenderOptions {
        default_language: "it",
        prefix: Some("[ESERCITAZIONE]"),
    };
    let r = t.render(&v, &opts).unwrap();
    for channel in [
        ChannelId::Sms,
        ChannelId::Telegram,
        ChannelId::Email,
        ChannelId::Banner,
    ] {
        let text = r.text(channel, "it").unwrap();
        assert!(
            text.text.starts_with("[ESERCITAZIONE] "),
            "{channel}: {}",
            text.text
        );
    }
    assert!(
        r.text(ChannelId::Email, "it")
            .unwrap()
            .subject
            .as_ref()
            .unwrap()
            .starts_with("[ESERCITAZIONE] ")
    );
    assert!(r.headline().starts_with("[ESERCITAZIONE] "));
}

#[test]
fn an_undeclared_variable_in_a_text_is_a_render_error_naming_the_field() {
    let broken = METEO.replace("sms = \"Allerta", "sms = \"{{ zona }} Allerta");
    let t = Template::parse("m", Path::new("m.toml"), &broken).unwrap();
    let v = t
        .resolve_vars(&vars(&[("livello", "giallo"), ("rischio", "neve")]))
        .unwrap();
    let err = t.render(&v, &PLAIN).unwrap_err().to_string();
    assert!(err.contains("] sms"), "{err}");
    assert!(err.contains("`zona` is undefined"), "{err}");
}

#[test]
fn unknown_top_level_keys_and_bad_cap_values_are_file_errors() {
    let typo = METEO.replace("urgency =", "urgenza = \"x\"\nurgency =");
    assert!(
        Template::parse("m", Path::new("m.toml"), &typo)
            .unwrap_err()
            .to_string()
            .contains("urgenza")
    );
    let bad = METEO.replace("certainty = \"Likely\"", "certainty = \"Sure\"");
    let t = Template::parse("m", Path::new("m.toml"), &bad).unwrap();
    let v = t
        .resolve_vars(&vars(&[("livello", "giallo"), ("rischio", "neve")]))
        .unwrap();
    assert!(
        t.render(&v, &PLAIN)
            .unwrap_err()
            .to_string()
            .contains("certainty = `Sure`")
    );
}

#[test]
fn control_characters_in_a_variable_are_refused_naming_the_variable() {
    for bad in [
        "neve\u{1}",
        "ne\u{7f}ve",
        "neve\u{85}",
        "\u{1b}[31mneve",
        "ne\u{0}ve",
    ] {
        let err = meteo()
            .resolve_vars(&vars(&[("livello", "giallo"), ("rischio", bad)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("variable `rischio`"), "{bad:?}: {err}");
        assert!(err.contains("control character"), "{bad:?}: {err}");
    }
    // Tab, line feed and carriage return are text, and so is all of Unicode.
    let ok = meteo().resolve_vars(&vars(&[
        ("livello", "giallo"),
        ("rischio", "neve\tforte\r\nanche ghiaccio \u{a0}àè€ 🌧"),
    ]));
    assert!(ok.is_ok(), "{ok:?}");
}

const BILINGUAL_EMAIL: &str = r#"
title = "Prova"
event = "Prova"
category = "Met"
severity = "Moderate"
urgency = "Expected"
certainty = "Likely"

[it]
headline = "Titolo"
email_text = "Testo italiano"
email_html = "<p>HTML italiano</p>"

[en]
headline = "Title"
email_text = "English text"

[de]
headline = "Titel"
"#;

#[test]
fn the_email_html_part_falls_back_only_together_with_the_text_part() {
    let t = Template::parse("p", Path::new("p.toml"), BILINGUAL_EMAIL).unwrap();
    let r = t.render(&BTreeMap::new(), &PLAIN).unwrap();
    let en = r.text(ChannelId::Email, "en").unwrap();
    assert_eq!(en.text, "English text");
    assert_eq!(en.html, None, "an English text with an Italian HTML part");
    // A language with no email text at all gets the default language's
    // whole message, HTML included.
    let de = r.text(ChannelId::Email, "de").unwrap();
    assert_eq!(de.text, "Testo italiano");
    assert_eq!(de.html.as_deref(), Some("<p>HTML italiano</p>"));
    let it = r.text(ChannelId::Email, "it").unwrap();
    assert_eq!(it.html.as_deref(), Some("<p>HTML italiano</p>"));
}

#[test]
fn a_template_may_have_its_own_escalation_and_a_voice_text_with_the_drill_prefix() {
    let text = format!(
        "{METEO}\n[escalation]\nsteps = [{{ after = \"20m\", channel = \"voice\" }}, {{ after = \"10m\", channel = \"sms\" }}]\n"
    )
    .replace(
        "banner = \"Allerta",
        "voice = \"Allerta {{ livello }} per rischio {{ rischio }}.\"\nbanner = \"Allerta",
    );
    let t = Template::parse("t", Path::new("t.toml"), &text).expect("parse");
    let steps = t.escalation.clone().expect("steps");
    assert_eq!(
        steps.iter().map(|s| s.channel).collect::<Vec<_>>(),
        [ChannelId::Sms, ChannelId::Voice]
    );
    let vars = t.resolve_vars(&t.sample_vars()).expect("vars");
    let r = t
        .render(
            &vars,
            &RenderOptions {
                default_language: "it",
                prefix: Some("ESERCITAZIONE:"),
            },
        )
        .expect("render");
    assert_eq!(
        r.text(ChannelId::Voice, "it").expect("voice").text,
        "ESERCITAZIONE: Allerta arancione per rischio idraulico."
    );
    let bad =
        format!("{METEO}\n[escalation]\nsteps = [{{ after = \"10m\", channel = \"banner\" }}]\n");
    let err = Template::parse("t", Path::new("t.toml"), &bad).unwrap_err();
    assert!(err.to_string().contains("[escalation] steps"), "{err}");
}
