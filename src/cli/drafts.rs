//! `allerta drafts list|show ID|discard ID`: the drafts `watch` made from
//! the official bulletins (SPEC §16).

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

use super::Ctx;
use crate::error::Error;
use crate::ledger::{DraftRow, Ledger};

#[derive(Subcommand, Debug)]
pub enum DraftsCommand {
    /// The drafts, newest first
    List,
    /// One draft: what it would send and the command to send it
    Show {
        /// Draft id
        id: String,
    },
    /// Discard a pending draft: nothing is sent
    Discard {
        /// Draft id
        id: String,
    },
}

fn document(d: &DraftRow) -> serde_json::Value {
    json!({
        "id": d.id, "source": d.source, "template": d.template, "variables": d.variables,
        "audience": d.audience, "state": d.state.as_str(), "created_at": d.created_at,
        "subject": d.subject, "day": d.day, "levels": d.levels, "cancels": d.cancels,
        "alert_id": d.alert_id, "text": d.text, "decided_at": d.decided_at,
        "decided_by": d.decided_by,
    })
}

pub fn run(ctx: &Ctx, command: DraftsCommand) -> Result<(), Error> {
    match command {
        DraftsCommand::List => list(ctx),
        DraftsCommand::Show { id } => {
            let ledger = Ledger::open(&ctx.config.general.database)?;
            show(ctx, &ledger.draft(&id)?);
            Ok(())
        }
        DraftsCommand::Discard { id } => {
            let draft = crate::alert::draft::discard(&ctx.config, &ctx.actor, &id)?;
            if ctx.json {
                super::print_json(&json!({ "draft": document(&draft) }));
            } else {
                println!("draft {} discarded: nothing was sent", draft.id);
            }
            Ok(())
        }
    }
}

fn list(ctx: &Ctx) -> Result<(), Error> {
    let ledger = Ledger::open(&ctx.config.general.database)?;
    let drafts = ledger.drafts()?;
    if ctx.json {
        super::print_json(&json!({ "drafts": drafts.iter().map(document).collect::<Vec<_>>() }));
        return Ok(());
    }
    if drafts.is_empty() {
        println!("no drafts yet (`allerta watch` makes them from the bulletins)");
        return Ok(());
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header([
        "id", "state", "created", "source", "day", "levels", "template", "audience", "alert",
    ]);
    for d in &drafts {
        let levels = match &d.cancels {
            Some(alert) => format!("ends {alert}"),
            None => d
                .levels
                .iter()
                .map(|(r, l)| format!("{r} {l}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        table.add_row([
            d.id.to_string(),
            d.state.as_str().to_owned(),
            d.created_at.clone(),
            d.source.clone(),
            d.day.clone(),
            levels,
            d.template.clone(),
            d.audience.join(" "),
            d.alert_id.clone().unwrap_or_default(),
        ]);
    }
    println!("{table}");
    Ok(())
}

fn show(ctx: &Ctx, d: &DraftRow) {
    if ctx.json {
        super::print_json(&json!({ "draft": document(d) }));
        return;
    }
    println!(
        "draft {} ({}), created {}",
        d.id,
        d.state.as_str(),
        d.created_at
    );
    println!("source {}: {} on {}", d.source, d.subject, d.day);
    if let Some(alert) = &d.cancels {
        println!("ends alert {alert} (cessata allerta)");
    } else {
        let levels: Vec<String> = d.levels.iter().map(|(r, l)| format!("{r} {l}")).collect();
        println!("bulletin: {}", levels.join(", "));
    }
    println!(
        "template {}, audience {}",
        d.template,
        d.audience.join(", ")
    );
    for (k, v) in &d.variables {
        println!("  --var {k}={v}");
    }
    println!("\n{}\n", d.text);
    match (&d.alert_id, d.state) {
        (Some(alert), _) => println!("sent as alert {alert}: allerta status {alert}"),
        (None, crate::ledger::DraftState::Pending) => println!(
            "to send it:    allerta send --draft {}\nto discard it: allerta drafts discard {}",
            d.id, d.id
        ),
        (None, _) => {}
    }
}
