//! `status`, `list`, `export`: read-only views of the ledger.

use std::io::Write;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::deliver::{print_status, status_document};
use super::{Ctx, safe_text};
use crate::error::Error;
use crate::ledger::{DeliveryRow, Ledger};

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Alert id (default: the latest)
    alert_id: Option<String>,
    /// One line per delivery
    #[arg(long)]
    deliveries: bool,
    /// Only failed deliveries (implies --deliveries)
    #[arg(long)]
    failed: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only alerts created since this time (RFC 3339 or a date like 2026-11-01)
    #[arg(long)]
    since: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    alert_id: String,
    #[arg(long, value_enum, default_value = "csv")]
    format: ExportFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ExportFormat {
    Csv,
    Json,
}

fn open(ctx: &Ctx) -> Result<Ledger, Error> {
    Ledger::open(&ctx.config.general.database).map_err(Error::from)
}

pub fn status(ctx: &Ctx, args: StatusArgs) -> Result<(), Error> {
    let ledger = open(ctx)?;
    let row = ledger.alert(args.alert_id.as_deref())?;
    let counts = ledger.counts(&row.id)?;
    let listing = args.deliveries || args.failed;
    if ctx.json {
        let mut doc = status_document(&row, &counts);
        doc["thread"] = json!(ledger.thread(&row.thread_id)?);
        doc["alert"]["planning_pending"] = json!(ledger.planning_pending(&row.id)?);
        super::sms_status::annotate(&ctx.config, &mut doc);
        super::escalation::annotate(&ledger, &row.id, &mut doc)?;
        if listing {
            let mut list = Vec::new();
            ledger.for_each_delivery(&row.id, args.failed, |d| {
                list.push(json!(d));
                Ok(())
            })?;
            doc["deliveries"] = json!(list);
        }
        super::print_json(&doc);
        return Ok(());
    }
    print_status(&row, &counts, ctx.config.general.timezone);
    if ledger.planning_pending(&row.id)? {
        println!(
            "planning: NOT FINISHED — part of the audience is not planned yet (the send was interrupted); `allerta resume {}` plans and sends the rest",
            row.id
        );
    }
    super::deliver::print_thread(&ledger, &row)?;
    super::escalation::print(&ledger, &row.id, ctx.config.general.timezone)?;
    if let Some(line) = super::sms_status::line(&ctx.config, &counts) {
        println!("{line}");
    }
    if listing {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        ledger.for_each_delivery(&row.id, args.failed, |d| {
            writeln!(
                out,
                "{:>8} {:<9} {:<32} {:<10} attempts={} {}{}",
                d.id,
                d.channel,
                d.address,
                d.state,
                d.attempts,
                d.provider_id
                    .as_deref()
                    .map(|p| format!("id={} ", safe_text::for_terminal(p)))
                    .unwrap_or_default(),
                safe_text::for_terminal(d.last_error.as_deref().unwrap_or(""))
            )
        })?;
    }
    Ok(())
}

pub fn list(ctx: &Ctx, args: ListArgs) -> Result<(), Error> {
    let ledger = open(ctx)?;
    let since = args
        .since
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.to_utc().to_rfc3339())
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .map(|d| format!("{d}T00:00:00"))
                })
                .map_err(|_| {
                    Error::Input(format!("--since `{s}`: expected RFC 3339 or YYYY-MM-DD"))
                })
        })
        .transpose()?;
    let alerts = ledger.alerts(since.as_deref())?;
    let mut entries = Vec::new();
    for a in &alerts {
        let counts = ledger.counts(&a.id)?;
        if ctx.json {
            let mut doc = status_document(a, &counts);
            let mut entry = doc["alert"].take();
            entry["channels"] = json!(counts
                .iter()
                .map(|(ch, c)| (ch.clone(), json!({ "total": c.total, "failed": c.failed, "delivered": c.delivered, "sent": c.sent, "pending": c.pending + c.sending })))
                .collect::<serde_json::Map<_, _>>());
            entries.push(entry);
        } else {
            let summary: Vec<String> = counts
                .iter()
                .map(|(ch, c)| {
                    format!(
                        "{ch} {}/{}{}",
                        c.sent + c.delivered,
                        c.total,
                        if c.failed > 0 {
                            format!(" ({} failed)", c.failed)
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            let thread = if a.thread_id == a.id {
                String::new()
            } else {
                format!("  (thread {})", a.thread_id)
            };
            println!(
                "{}  {:<8} {:<9} {:<17} {:<18} {}  [{}]{thread}",
                a.id,
                a.status,
                a.msg_type,
                a.state,
                a.template,
                a.headline,
                summary.join(", ")
            );
        }
    }
    if ctx.json {
        super::print_json(&json!({ "alerts": entries }));
    } else if alerts.is_empty() {
        println!("no alerts");
    }
    Ok(())
}

pub fn export(ctx: &Ctx, args: ExportArgs) -> Result<(), Error> {
    let ledger = open(ctx)?;
    let row = ledger.alert(Some(&args.alert_id))?;
    let stdout = std::io::stdout();
    match args.format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(stdout.lock());
            ledger.for_each_delivery(&row.id, false, |d| {
                w.serialize(csv_safe(d)).map_err(std::io::Error::other)
            })?;
            w.flush().map_err(|e| Error::Runtime(e.to_string()))?;
        }
        ExportFormat::Json => {
            let mut list = Vec::new();
            ledger.for_each_delivery(&row.id, false, |d| {
                list.push(json!(d));
                Ok(())
            })?;
            let counts = ledger.counts(&row.id)?;
            let mut doc = status_document(&row, &counts);
            doc["deliveries"] = json!(list);
            super::print_json(&doc);
        }
    }
    Ok(())
}

/// Every text cell of an exported delivery neutralised for spreadsheets
/// (SPEC §13): addresses, names and provider replies come from outside.
fn csv_safe(mut d: DeliveryRow) -> DeliveryRow {
    let cell = |s: String| safe_text::for_csv(&s).into_owned();
    let opt = |s: Option<String>| s.map(cell);
    d.channel = cell(d.channel);
    d.address = cell(d.address);
    d.recipient = opt(d.recipient);
    d.language = cell(d.language);
    d.state = cell(d.state);
    d.provider_id = opt(d.provider_id);
    d.last_error = opt(d.last_error);
    d.updated_at = cell(d.updated_at);
    d.acknowledged_at = opt(d.acknowledged_at);
    d
}
