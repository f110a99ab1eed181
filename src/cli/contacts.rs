//! `contacts check`, `contacts list` and `contacts coverage`.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

use super::Ctx;
use crate::contacts::{self, coverage::SubscriberRef};
use crate::error::Error;
use crate::ledger::Ledger;

pub fn check(ctx: &Ctx) -> Result<(), Error> {
    let (valid, problems) = contacts::problems(&ctx.config);
    if ctx.json {
        super::print_json(&json!({ "valid": valid, "problems": problems }));
    } else {
        for p in &problems {
            println!("{p}");
        }
        println!("{valid} valid contact(s), {} problem(s)", problems.len());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "{} problem(s) in contact files",
            problems.len()
        )))
    }
}

pub fn list(ctx: &Ctx, zone: Option<&str>) -> Result<(), Error> {
    let zone = zone
        .map(|z| ctx.config.zone(z))
        .transpose()
        .map_err(Error::Input)?;
    let mut rows = Vec::new();
    let mut problems = 0;
    contacts::scan::<()>(&ctx.config, |row| {
        match row {
            Ok(c) if zone.as_ref().is_none_or(|z| c.zones.contains(z)) => {
                if ctx.json {
                    let mut row = json!(c);
                    row["phone_type"] = json!(c.phone.as_ref().map(|p| p.kind()));
                    row["landline_type"] = json!(c.landline.as_ref().map(|p| p.kind()));
                    row["source"] = json!(format!("{}:{}", c.file.display(), c.line));
                    rows.push(row);
                } else {
                    let zones: Vec<&str> = c.zones.iter().map(|z| z.as_str()).collect();
                    let phone = c
                        .phone
                        .as_ref()
                        .map_or("-".to_owned(), |p| format!("{p} ({})", p.kind().as_str()));
                    println!(
                        "{:<12} {:<24} {:<25} {:<14} {:<30} {:<12} zones={} groups={}",
                        c.id,
                        c.name,
                        phone,
                        c.landline.as_ref().map(|p| p.as_str()).unwrap_or("-"),
                        c.email.as_ref().map(|e| e.as_str()).unwrap_or("-"),
                        c.telegram.as_ref().map(|t| t.as_str()).unwrap_or("-"),
                        zones.join(";"),
                        c.groups.join(";")
                    );
                }
            }
            Ok(_) => {}
            Err(e) => {
                problems += 1;
                eprintln!("warning: {e}");
            }
        }
        Ok(())
    })
    .ok();
    if ctx.json {
        super::print_json(&json!({ "contacts": rows, "problems": problems }));
    }
    Ok(())
}

pub fn coverage(ctx: &Ctx, zone: Option<&str>) -> Result<(), Error> {
    let zone = zone
        .map(|z| ctx.config.zone(z))
        .transpose()
        .map_err(Error::Input)?;
    let subscribers = active_subscribers(ctx)?;
    let cov = contacts::coverage::coverage(&ctx.config, &subscribers, zone.as_ref());
    for p in &cov.problems {
        eprintln!("warning: {p} (nobody reaches this row until it is fixed)");
    }
    if ctx.json {
        super::print_json(&json!(cov));
        return Ok(());
    }
    let channels = contacts::coverage::personal_channels(&ctx.config);
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    let mut header = vec!["zone".to_owned(), "recipients".to_owned()];
    header.extend(channels.iter().map(|c| c.to_string()));
    header.push("no channel".to_owned());
    table.set_header(header);
    let zones = cov
        .zones
        .iter()
        .map(|(z, c)| (z.as_str().to_owned(), c))
        .chain(cov.no_zone.iter().map(|c| ("(no zone)".to_owned(), c)));
    let mut lists = Vec::new();
    for (name, c) in zones {
        let mut row = vec![name.clone(), c.total.to_string()];
        row.extend(
            channels
                .iter()
                .map(|ch| c.channels.get(ch).copied().unwrap_or(0).to_string()),
        );
        row.push(c.none.to_string());
        table.add_row(row);
        if !c.unreached.is_empty() {
            lists.push((name, &c.unreached));
        }
    }
    println!("{table}");
    for (zone, people) in lists {
        let title = ctx
            .config
            .zones
            .get(&crate::domain::ZoneId::declared(&zone))
            .map_or(String::new(), |z| format!(" ({})", z.name));
        println!("\nReached by no channel in {zone}{title}: {}", people.len());
        for u in people {
            let place = if u.line > 0 {
                format!("{}:{}", u.file.display(), u.line)
            } else {
                "bot database".to_owned()
            };
            let name = if u.name.is_empty() { "-" } else { &u.name };
            println!("  {name}  id={}  {place}", u.id);
        }
    }
    if !cov.problems.is_empty() {
        println!(
            "\n{} row(s) could not be read and reach nobody (see `allerta contacts check`)",
            cov.problems.len()
        );
    }
    Ok(())
}

/// The active bot subscribers, read-only; none when there is no database yet.
fn active_subscribers(ctx: &Ctx) -> Result<Vec<SubscriberRef>, Error> {
    let Some(ledger) = Ledger::open_existing_read_only(&ctx.config.general.database)? else {
        return Ok(Vec::new());
    };
    Ok(ledger
        .active_subscribers()?
        .into_iter()
        .map(|s| SubscriberRef {
            chat_id: s.chat,
            zones: s.zones.iter().map(|z| z.as_str().to_owned()).collect(),
        })
        .collect())
}
