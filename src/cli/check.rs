//! `allerta check`: the readiness check an officer runs before the season
//! (and allerta-check.timer runs daily). One line per item, `--json` for
//! scripts; exit 0 only when everything is ready. Nothing is sent.
//!
//! Exit codes: 0 ready; 2 the configuration, a template or a contact file
//! needs fixing; 1 otherwise (database, outbox directory, a channel's
//! service or credentials).

use std::path::Path;

use serde_json::json;

use super::templates;
use crate::check::{self, Item};
use crate::config::Config;
use crate::contacts;
use crate::error::Error;

/// Items whose failure means "bad input" (exit 2) rather than "not ready".
const INPUT_ITEMS: &[&str] = &["config", "templates", "contacts"];

pub async fn run(config_path: Option<&Path>, json: bool) -> Result<(), Error> {
    let mut items = Vec::new();
    match Config::load(config_path) {
        Ok(config) => {
            items.push(Item::ok("config", config.path.display().to_string()));
            items.push(templates_item(&config));
            items.push(contacts_item(&config));
            items.extend(check::services(&config).await);
        }
        Err(e) => items.push(Item::fail(
            "config",
            e.to_string(),
            "correct the configuration as the message says (the other checks need a valid configuration)",
        )),
    }

    for i in &items {
        tracing::debug!(item = %i.item, ok = i.ok, detail = %i.detail, "check");
    }
    let failed: Vec<&Item> = items.iter().filter(|i| !i.ok).collect();
    if json {
        super::print_json(&json!({ "ready": failed.is_empty(), "items": items }));
    } else {
        let width = items.iter().map(|i| i.item.len()).max().unwrap_or(0);
        for i in &items {
            let status = if i.ok { "ok  " } else { "FAIL" };
            match &i.fix {
                Some(fix) => println!("{status}  {:<width$}  {} — fix: {fix}", i.item, i.detail),
                None => println!("{status}  {:<width$}  {}", i.item, i.detail),
            }
        }
        if failed.is_empty() {
            println!("ready: {} item(s) checked, nothing sent", items.len());
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = failed.iter().map(|i| i.item.as_str()).collect();
    let message = format!("not ready: {}", names.join(", "));
    if failed
        .iter()
        .any(|i| INPUT_ITEMS.contains(&i.item.as_str()))
    {
        Err(Error::Input(message))
    } else {
        Err(Error::Runtime(message))
    }
}

fn templates_item(config: &Config) -> Item {
    let dir = config.general.templates_dir.display();
    let reports = match templates::reports(config) {
        Ok(r) => r,
        Err(e) => {
            return Item::fail(
                "templates",
                e.to_string(),
                format!("make {dir} (general.templates_dir) readable and put the templates there"),
            );
        }
    };
    if reports.is_empty() {
        return Item::fail(
            "templates",
            format!("no templates in {dir}"),
            format!("put the alert templates (*.toml) in {dir} (general.templates_dir)"),
        );
    }
    let bad: Vec<_> = reports.iter().filter(|r| !r.problems.is_empty()).collect();
    match bad.first() {
        None => Item::ok(
            "templates",
            format!(
                "{} template(s) render in every language within channel limits",
                reports.len()
            ),
        ),
        Some(first) => Item::fail(
            "templates",
            format!(
                "{} of {} template(s) have problems; first: {}: {}",
                bad.len(),
                reports.len(),
                first.id,
                first.problems.join("; ")
            ),
            format!(
                "run `allerta templates check` for every problem and correct the templates in {dir}"
            ),
        ),
    }
}

fn contacts_item(config: &Config) -> Item {
    let dir = config.general.contacts_dir.display();
    let (valid, problems) = contacts::problems(config);
    if let Some(first) = problems.first() {
        return Item::fail(
            "contacts",
            format!(
                "{} problem(s) ({valid} valid contact(s)); first: {first}",
                problems.len()
            ),
            "run `allerta contacts check` for every problem and correct those rows",
        );
    }
    if valid == 0 {
        return Item::fail(
            "contacts",
            format!("no contacts in {dir}"),
            format!("put the contact lists (*.csv) in {dir} (general.contacts_dir)"),
        );
    }
    let note = check::files::world_readable_note(&config.general.contacts_dir).unwrap_or_default();
    Item::ok(
        "contacts",
        format!("{valid} valid contact(s) in {dir}{note}"),
    )
}
