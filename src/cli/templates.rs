//! `templates list` and `templates check`.

use serde_json::json;

use super::Ctx;
use crate::alert::request::limit_problems;
use crate::config::Config;
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

/// What `templates check` found for one template.
pub(super) struct TemplateReport {
    pub id: String,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// Renders every template in every language with its example values (and
/// each allowed value of every variable that has a list), within limits.
pub fn check(ctx: &Ctx) -> Result<(), Error> {
    let reports = reports(&ctx.config)?;
    let failures = reports.iter().filter(|r| !r.problems.is_empty()).count();
    if ctx.json {
        let results: Vec<_> = reports
            .iter()
            .map(|r| json!({ "id": r.id, "ok": r.problems.is_empty(), "problems": r.problems, "notes": r.notes }))
            .collect();
        super::print_json(&json!({ "templates": results }));
    } else {
        for r in &reports {
            println!(
                "{} {}",
                if r.problems.is_empty() {
                    "ok  "
                } else {
                    "FAIL"
                },
                r.id
            );
            for p in &r.problems {
                println!("       {p}");
            }
            for n in &r.notes {
                println!("       note: {n}");
            }
        }
    }
    if failures > 0 {
        return Err(Error::Input(format!(
            "{failures} template(s) have problems"
        )));
    }
    Ok(())
}

/// The check behind `templates check` (and `check`), without printing.
pub(super) fn reports(config: &Config) -> Result<Vec<TemplateReport>, Error> {
    let dir = &config.general.templates_dir;
    let mut reports = Vec::new();
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
                            prefix: drill.then_some(config.drill.prefix.as_str()),
                        };
                        match t.render(&resolved, &options) {
                            Err(e) => problems.push(e.to_string()),
                            Ok(mut r) => {
                                if drill {
                                    // Drills are never posted (SPEC §11):
                                    // their prefix never counts there.
                                    for social in ChannelId::SOCIAL {
                                        r.channels.remove(&social);
                                    }
                                }
                                for p in limit_problems(config, &r) {
                                    let p =
                                        format!("{p}{}", if drill { " (as a drill)" } else { "" });
                                    if !problems.contains(&p) {
                                        problems.push(p);
                                    }
                                }
                                if notes.is_empty() && !drill {
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
        reports.push(TemplateReport {
            id,
            problems,
            notes,
        });
    }
    Ok(reports)
}
