//! `templates list` and `templates check`.

use serde_json::json;

use super::Ctx;
use super::send::limit_problems;
use crate::domain::ChannelId;
use crate::error::Error;
use crate::template::{RenderOptions, Template, list_ids};

pub fn list(ctx: &Ctx) -> Result<(), Error> {
    let dir = &ctx.config.general.templates_dir;
    let mut entries = Vec::new();
    for id in list_ids(dir)? {
        let t = Template::load(dir, &id)?;
        if ctx.json {
            entries.push(json!({ "id": t.id, "title": t.title, "languages": t.languages.keys().collect::<Vec<_>>(), "variables": t.variables }));
        } else {
            let vars: Vec<String> = t
                .variables
                .iter()
                .map(|(k, v)| {
                    if v.is_required() {
                        k.clone()
                    } else {
                        format!("[{k}]")
                    }
                })
                .collect();
            println!(
                "{:<24} {:<32} langs: {:<6} vars: {}",
                t.id,
                t.title,
                t.languages.keys().cloned().collect::<Vec<_>>().join(","),
                vars.join(" ")
            );
        }
    }
    if ctx.json {
        super::print_json(&json!({ "templates": entries }));
    }
    Ok(())
}

/// Renders every template in every language with its example values (and
/// each allowed value of every variable that has a list), within limits.
pub fn check(ctx: &Ctx) -> Result<(), Error> {
    let config = &ctx.config;
    let dir = &config.general.templates_dir;
    let mut results = Vec::new();
    let mut failures = 0;
    for id in list_ids(dir)? {
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        match Template::load(dir, &id) {
            Err(e) => problems.push(e.to_string()),
            Ok(t) => {
                let base = t.sample_vars();
                let mut variants = vec![base.clone()];
                for (name, spec) in &t.variables {
                    for value in spec.allowed.iter().flatten() {
                        let mut v: Vec<(String, String)> =
                            base.iter().filter(|(k, _)| k != name).cloned().collect();
                        v.push((name.clone(), value.clone()));
                        variants.push(v);
                    }
                }
                for (name, spec) in &t.variables {
                    if spec.is_required() && spec.example.is_none() && spec.allowed.is_none() {
                        problems.push(format!("required variable `{name}` has no example"));
                    }
                }
                for vars in variants {
                    let resolved = match t.resolve_vars(&vars) {
                        Ok(v) => v,
                        Err(e) => {
                            problems.push(e.to_string());
                            continue;
                        }
                    };
                    for drill in [false, true] {
                        let options = RenderOptions {
                            default_language: &config.general.default_language,
                            drill_prefix: drill.then_some(config.drill.prefix.as_str()),
                        };
                        match t.render(&resolved, &options) {
                            Err(e) => problems.push(e.to_string()),
                            Ok(r) => {
                                for p in limit_problems(config, &r) {
                                    let p =
                                        format!("{p}{}", if drill { " (as a drill)" } else { "" });
                                    if !problems.contains(&p) {
                                        problems.push(p);
                                    }
                                }
                                if notes.is_empty() {
                                    for ch in ChannelId::ALL {
                                        if !r.channels.contains_key(&ch) {
                                            notes.push(format!("no {ch} text: not sent on {ch}"));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if !problems.is_empty() {
            failures += 1;
        }
        if !ctx.json {
            println!("{} {id}", if problems.is_empty() { "ok  " } else { "FAIL" });
            for p in &problems {
                println!("       {p}");
            }
            for n in &notes {
                println!("       note: {n}");
            }
        }
        results.push(
            json!({ "id": id, "ok": problems.is_empty(), "problems": problems, "notes": notes }),
        );
    }
    if ctx.json {
        super::print_json(&json!({ "templates": results }));
    }
    if failures > 0 {
        return Err(Error::Input(format!(
            "{failures} template(s) have problems"
        )));
    }
    Ok(())
}
