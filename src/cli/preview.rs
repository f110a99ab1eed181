//! `preview`: every channel's text as it will be sent, with the exact SMS
//! analysis (encoding, what forced UCS-2, extension characters, segments).

use clap::Args;
use serde_json::json;

use super::Ctx;
use crate::alert::request::limit_problems;
use crate::channel::social::limits::{
    length_json as social_length_json, length_line as social_length_line,
};
use crate::domain::ChannelId;
use crate::error::Error;
use crate::template::{RenderOptions, Template, gsm};

#[derive(Args, Debug)]
pub struct PreviewArgs {
    template: String,
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = super::parse_var)]
    vars: Vec<(String, String)>,
    /// Only this language (default: every language of the template)
    #[arg(long)]
    lang: Option<String>,
    /// Render as a drill (with the drill prefix)
    #[arg(long)]
    drill: bool,
}

pub fn sms_json(text: &str) -> serde_json::Value {
    let a = gsm::analyze(text);
    json!({
        "encoding": a.encoding.as_str(), "characters": a.chars, "units": a.units, "segments": a.segments,
        "ucs2_forced_by": a.ucs2_forcing.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "extension_characters": a.extension_chars.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
    })
}

pub fn sms_line(text: &str) -> String {
    let a = gsm::analyze(text);
    let mut line = format!(
        "{} chars, {}, {} {}, {} segment(s)",
        a.chars,
        a.encoding.as_str(),
        a.units,
        if a.encoding == gsm::Encoding::Gsm7 {
            "septets"
        } else {
            "UTF-16 units"
        },
        a.segments
    );
    if !a.ucs2_forcing.is_empty() {
        let chars: Vec<String> = a
            .ucs2_forcing
            .iter()
            .map(|c| format!("'{c}' (U+{:04X})", *c as u32))
            .collect();
        line.push_str(&format!("; UCS-2 forced by {}", chars.join(", ")));
    }
    if !a.extension_chars.is_empty() && a.encoding == gsm::Encoding::Gsm7 {
        let chars: Vec<String> = a.extension_chars.iter().map(|c| format!("'{c}'")).collect();
        line.push_str(&format!(
            "; counted twice (GSM extension): {}",
            chars.join(" ")
        ));
    }
    line
}

/// A voice text's estimated duration (SPEC §14), for `--json`.
pub fn voice_json(text: &str, lang: &str) -> serde_json::Value {
    use crate::channel::voice::speech;
    json!({
        "words": text.split_whitespace().count(),
        "words_per_minute": speech::WORDS_PER_MINUTE,
        "seconds": speech::duration(text).as_secs_f64().round(),
        "call_seconds": speech::call_duration(text, lang).as_secs_f64().round(),
        "max_seconds": speech::MAX_TEXT.as_secs(),
    })
}

/// "about 24 s spoken once (limit 90 s); the call about 52 s: …".
pub fn voice_line(text: &str, lang: &str) -> String {
    use crate::channel::voice::speech;
    format!(
        "voice: {} words, about {} s spoken once (limit {} s); the call about {} s (the text twice, then the prompt) at {} words per minute",
        text.split_whitespace().count(),
        speech::duration(text).as_secs_f64().round(),
        speech::MAX_TEXT.as_secs(),
        speech::call_duration(text, lang).as_secs_f64().round(),
        speech::WORDS_PER_MINUTE
    )
}

pub fn run(ctx: &Ctx, args: PreviewArgs) -> Result<(), Error> {
    let config = &ctx.config;
    let template = Template::load(&config.general.templates_dir, &args.template)?;
    let vars = template.resolve_vars(&args.vars)?;
    let rendered = template.render(
        &vars,
        &RenderOptions {
            default_language: &config.general.default_language,
            prefix: args.drill.then_some(config.drill.prefix.as_str()),
        },
    )?;
    let langs: Vec<String> = match &args.lang {
        Some(l) => vec![l.clone()],
        None => template.languages.keys().cloned().collect(),
    };
    let problems = limit_problems(config, &rendered);
    let link_base = crate::channel::social::link_base(config);
    let missing: Vec<&str> = ChannelId::ALL
        .iter()
        .filter(|c| !rendered.channels.contains_key(c))
        .map(|c| c.as_str())
        .collect();
    if ctx.json {
        let mut out = serde_json::Map::new();
        for lang in &langs {
            let mut by_channel = serde_json::Map::new();
            for ch in ChannelId::ALL {
                if let Some(t) = rendered.text(ch, lang) {
                    let mut v = json!(t);
                    if ch == ChannelId::Sms {
                        v["sms"] = sms_json(&t.text);
                    }
                    if let Some(len) = social_length_json(ch, &t.text, link_base.as_deref()) {
                        v["post"] = len;
                    }
                    if ch == ChannelId::Voice {
                        v["voice"] = voice_json(&t.text, lang);
                    }
                    by_channel.insert(ch.to_string(), v);
                }
            }
            out.insert(
                lang.clone(),
                json!({ "info": rendered.info.get(lang), "channels": by_channel }),
            );
        }
        super::print_json(&json!({
            "template": template.id, "meta": rendered.meta, "variables": vars,
            "languages": out, "channels_without_text": missing, "problems": problems,
        }));
    } else {
        let m = &rendered.meta;
        println!(
            "{} — {} | {} {} {} {}{}",
            template.id,
            m.event,
            m.category,
            m.severity,
            m.urgency,
            m.certainty,
            m.response_type
                .as_ref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        );
        for lang in &langs {
            println!("\n======== [{lang}] ========");
            if let Some(info) = rendered.info.get(lang) {
                println!("headline: {}", info.headline);
            }
            for ch in ChannelId::ALL {
                let Some(t) = rendered.text(ch, lang) else {
                    continue;
                };
                println!("\n--- {ch} ---");
                if let Some(s) = &t.subject {
                    println!("subject: {s}");
                }
                println!("{}", t.text);
                if ch == ChannelId::Sms {
                    println!("[{}]", sms_line(&t.text));
                }
                if let Some(line) = social_length_line(ch, &t.text, link_base.as_deref()) {
                    println!("[{line}]");
                }
                if ch == ChannelId::Voice {
                    println!("[{}]", voice_line(&t.text, lang));
                }
                if let Some(h) = &t.html {
                    println!("--- {ch} (html) ---\n{h}");
                }
            }
        }
        if !missing.is_empty() {
            println!(
                "\nnot sent by this template (no text): {}",
                missing.join(", ")
            );
        }
        for p in &problems {
            println!("PROBLEM: {p}");
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "{} text(s) cannot be sent as they are",
            problems.len()
        )))
    }
}
