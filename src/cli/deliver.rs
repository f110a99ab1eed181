//! What every sending command shares on the terminal: the session handed
//! to the alert layer (consent, notes, progress bars), the confirmation
//! prompt, and the status report with the right exit code.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

use super::Ctx;
use super::progress::Bars;
use crate::alert::{Answer, Consent, Notify, Operator, Screen, Session, Stop};
use crate::dispatch::{NoProgress, Progress};
use crate::error::Error;
use crate::ledger::{AlertRow, ChannelCounts, Ledger};

/// Notes from the alert layer, on stderr (none with `--json`).
pub struct Notes {
    quiet: bool,
}

impl Notes {
    pub fn new(ctx: &Ctx) -> Self {
        Self { quiet: ctx.json }
    }
}

impl Notify for Notes {
    fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    fn warn(&self, text: &str) {
        eprintln!("{text}");
    }
}

/// Asks on the terminal (stdin and stderr both a terminal).
pub struct Terminal;

impl Operator for Terminal {
    fn confirm(&self, screen: &Screen) -> Answer {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
            return Answer::NoTerminal;
        }
        let mut err = std::io::stderr();
        let _ = writeln!(err, "\n{}", screen.heading);
        for line in &screen.lines {
            let _ = writeln!(err, "{line}");
        }
        let _ = write!(
            err,
            "{} [{}] Type 'si' or 'yes' to confirm: ",
            screen.question,
            screen.status.as_str().to_uppercase()
        );
        let _ = err.flush();
        let mut answer = String::new();
        if stdin.lock().read_line(&mut answer).is_err() {
            return Answer::Declined;
        }
        match answer.trim().to_lowercase().as_str() {
            "si" | "sì" | "yes" | "y" | "s" => Answer::Confirmed,
            _ => Answer::Declined,
        }
    }
}

static TERMINAL: Terminal = Terminal;

/// The alert layer's session for one command; `yes` is `--yes`.
pub fn session<'a>(ctx: &'a Ctx, yes: bool, notes: &'a Notes) -> Session<'a> {
    let progress: Arc<dyn Progress> = if !ctx.json && std::io::stderr().is_terminal() {
        Arc::new(Bars::new())
    } else {
        Arc::new(NoProgress)
    };
    Session {
        config: &ctx.config,
        actor: &ctx.actor,
        identity: crate::alert::identity::os_identity(
            ctx.config
                .general
                .database
                .sqlite_path()
                .unwrap_or(&ctx.config.general.outbox_dir),
        ),
        consent: if yes {
            Consent::Given
        } else {
            Consent::Ask(&TERMINAL)
        },
        notify: notes,
        progress,
        stop: Stop::default(),
    }
}

/// The `status --json` document (SPEC §6).
pub fn status_document(
    row: &AlertRow,
    counts: &BTreeMap<String, ChannelCounts>,
) -> serde_json::Value {
    json!({
        "alert": {
            "id": row.id, "template": row.template, "status": row.status, "msg_type": row.msg_type,
            "state": row.state, "created_at": row.created_at, "operator": row.operator, "host": row.host,
            "headline": row.headline, "expires_at": row.expires_at, "settled_at": row.settled_at,
            "references": row.references, "audience": row.audience, "variables": row.variables,
            "skipped_rows": row.skipped_rows, "thread_id": row.thread_id,
            "transports": row.transports, "creator": row.creator,
            "approval_deadline": row.approval_deadline, "decided_by": row.decided_by,
        },
        "channels": counts,
    })
}

/// The unsettled deliveries that are not held for later. `held` is read
/// after `counts`: `serve` may hold a delivery in between (a busy call's
/// next try), so `held` can exceed what `counts` saw unsettled; that one is
/// planned for later, not left over.
fn not_finished(counts: &BTreeMap<String, ChannelCounts>, held: u64) -> u64 {
    counts
        .values()
        .map(ChannelCounts::unsettled)
        .sum::<u64>()
        .saturating_sub(held)
}

/// Prints the status of an alert; exit code 3 if anything failed or is left.
pub fn report(ctx: &Ctx, ledger: &Ledger, alert_id: &str) -> Result<(), Error> {
    let row = ledger.alert(Some(alert_id))?;
    let counts = ledger.counts(alert_id)?;
    if ctx.json {
        let mut doc = status_document(&row, &counts);
        doc["thread"] = json!(ledger.thread(&row.thread_id)?);
        super::sms_status::annotate(&ctx.config, &mut doc);
        super::escalation::annotate(ledger, alert_id, &mut doc)?;
        super::print_json(&doc);
    } else {
        print_status(&row, &counts, ctx.config.general.timezone);
        print_thread(ledger, &row)?;
        super::escalation::print(ledger, alert_id, ctx.config.general.timezone)?;
        if let Some(line) = super::sms_status::line(&ctx.config, &counts) {
            println!("{line}");
        }
    }
    let failed: u64 = counts.values().map(|c| c.failed).sum();
    // Held deliveries (escalation steps, a call's next try) are planned
    // for later, not left over: `resume` sends them when due.
    let left = not_finished(&counts, ledger.held_count(alert_id)?);
    if failed > 0 || left > 0 {
        return Err(Error::DeliveriesFailed(format!(
            "alert {alert_id}: {failed} deliveries failed, {left} not finished (see `allerta status {alert_id} --failed`)"
        )));
    }
    Ok(())
}

/// The alert's thread, when it has more than one message.
pub fn print_thread(ledger: &Ledger, row: &AlertRow) -> Result<(), Error> {
    let ids = ledger.thread(&row.thread_id)?;
    if ids.len() > 1 {
        let mut parts = Vec::new();
        for id in &ids {
            let a = ledger.alert(Some(id))?;
            let here = if *id == row.id { " ← this" } else { "" };
            parts.push(format!("{id} ({}, {}){here}", a.msg_type, a.state));
        }
        println!("  thread: {}", parts.join(" → "));
    }
    Ok(())
}

/// An RFC 3339 time from the ledger, shown in the comune's time zone.
pub fn local_time(rfc3339: &str, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&tz)
                .format("%d/%m/%Y %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}

pub fn print_status(row: &AlertRow, counts: &BTreeMap<String, ChannelCounts>, tz: chrono_tz::Tz) {
    println!(
        "alert {} — {} ({}, {}) — {}",
        row.id, row.template, row.status, row.msg_type, row.state
    );
    println!("  \"{}\"", row.headline);
    println!(
        "  created {} by {}@{}{}",
        local_time(&row.created_at, tz),
        row.operator,
        row.host,
        row.expires_at
            .as_ref()
            .map(|e| format!(", expires {}", local_time(e, tz)))
            .unwrap_or_default()
    );
    if !row.skipped_rows.is_empty() {
        println!(
            "  {} invalid contact row(s) were left out (--skip-invalid):",
            row.skipped_rows.len()
        );
        for r in row.skipped_rows.iter().take(20) {
            println!("    {r}");
        }
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header([
        "channel",
        "total",
        "pending",
        "sending",
        "sent",
        "delivered",
        "failed",
        "skipped",
        "ack",
    ]);
    for (channel, c) in counts {
        table.add_row([
            channel.clone(),
            c.total.to_string(),
            c.pending.to_string(),
            c.sending.to_string(),
            c.sent.to_string(),
            c.delivered.to_string(),
            c.failed.to_string(),
            c.skipped.to_string(),
            c.acknowledged.to_string(),
        ]);
    }
    println!("{table}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_held_after_the_counts_were_read_is_not_an_underflow() {
        // The counts saw both calls `sent`; then a busy callback held one
        // for its next try before `held_count` was read.
        let mut counts = BTreeMap::new();
        counts.insert(
            "voice".to_owned(),
            ChannelCounts {
                total: 2,
                sent: 2,
                ..ChannelCounts::default()
            },
        );
        assert_eq!(not_finished(&counts, 1), 0);
        counts.get_mut("voice").expect("voice").pending = 3;
        assert_eq!(not_finished(&counts, 1), 2);
    }
}
