//! Runs the engine for one alert (used by send, resume, retry) and reports
//! the result with the right exit code.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use super::progress::Bars;
use crate::channel::{self, AlertContext, Channel};
use crate::config::Config;
use crate::dispatch::{Engine, NoProgress, Progress, Writer};
use crate::domain::{CapStatus, ChannelId, MsgType};
use crate::error::Error;
use crate::ledger::{self, AlertRow, ChannelCounts, Ledger};

pub fn build_channels(config: &Config, ids: &[ChannelId]) -> Result<Vec<Arc<dyn Channel>>, Error> {
    ids.iter()
        .map(|id| channel::build(config, *id).map_err(Error::from))
        .collect()
}

/// Sends what is unsettled of `alert_id`, then prints its status. Exit code
/// 3 when deliveries failed or could not be finished.
pub async fn deliver_and_report(ctx: &Ctx, ledger: Ledger, alert_id: &str) -> Result<(), Error> {
    let ledger = deliver(ctx, ledger, alert_id).await?;
    report(ctx, &ledger, alert_id)
}

/// The engine run: lease, writer thread, lanes, settle.
pub async fn deliver(ctx: &Ctx, ledger: Ledger, alert_id: &str) -> Result<Ledger, Error> {
    let owner = ledger::lease_owner();
    if let Some(holder) =
        ledger.acquire_lease(alert_id, &owner, std::time::Duration::from_secs(60))?
    {
        return Err(Error::Runtime(format!(
            "alert {alert_id} is being sent right now by {holder}; not touching it (try again when that process ends)"
        )));
    }
    let row = ledger.alert(Some(alert_id))?;
    let context = Arc::new(alert_context(&row)?);
    let counts = ledger.counts(alert_id)?;
    let ids: Vec<ChannelId> = counts
        .iter()
        .filter(|(_, c)| c.unsettled() > 0)
        .filter_map(|(ch, _)| ch.parse().ok())
        .collect();
    let transports = build_channels(&ctx.config, &ids)?;
    for t in &transports {
        if t.is_outbox() && !ctx.json {
            eprintln!(
                "note: {} is on the outbox transport ({}): nobody is reached",
                t.id(),
                t.describe()
            );
        }
    }

    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(stop_on_signal(shutdown.clone()));
    let progress: Arc<dyn Progress> = if !ctx.json && std::io::stderr().is_terminal() {
        Arc::new(Bars::new())
    } else {
        Arc::new(NoProgress)
    };
    let (writer, handle) = Writer::spawn(ledger, alert_id.to_owned(), owner.clone());
    let engine = Engine {
        writer,
        retry: ctx.config.retry.clone(),
        progress,
        shutdown: shutdown.clone(),
    };
    let result = engine.run(context, transports).await;
    drop(engine);
    signals.abort();
    let ledger = handle
        .join()
        .map_err(|_| Error::Runtime("the ledger writer thread panicked".into()))??;
    ledger.settle_if_done(alert_id)?;
    ledger.release_lease(alert_id, &owner)?;
    let report = result.map_err(Error::Runtime)?;
    for (channel, reason) in &report.stopped {
        eprintln!(
            "error: channel {channel} stopped: {reason}\n  its remaining deliveries are kept as pending: fix the cause, then run `allerta resume {alert_id}`"
        );
    }
    if report.interrupted {
        return Err(Error::Runtime(format!(
            "interrupted: unfinished deliveries are kept; run `allerta resume {alert_id}` to finish them"
        )));
    }
    Ok(ledger)
}

async fn stop_on_signal(token: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("stopping: letting messages in flight finish…");
    token.cancel();
}

pub fn alert_context(row: &AlertRow) -> Result<AlertContext, Error> {
    let corrupt = |what: &str| {
        Error::Ledger(ledger::LedgerError::Corrupt(format!(
            "alert {}: {what}",
            row.id
        )))
    };
    Ok(AlertContext {
        id: row.id.clone(),
        status: row
            .status
            .parse::<CapStatus>()
            .map_err(|_| corrupt("status"))?,
        msg_type: row
            .msg_type
            .parse::<MsgType>()
            .map_err(|_| corrupt("msg_type"))?,
        rendered: serde_json::from_str(&row.rendered).map_err(|_| corrupt("rendered texts"))?,
        created_at: row.created_at.clone(),
        expires_at: row.expires_at.clone(),
    })
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
            "skipped_rows": row.skipped_rows,
        },
        "channels": counts,
    })
}

/// Prints the status of an alert; exit code 3 if anything failed or is left.
pub fn report(ctx: &Ctx, ledger: &Ledger, alert_id: &str) -> Result<(), Error> {
    let row = ledger.alert(Some(alert_id))?;
    let counts = ledger.counts(alert_id)?;
    if ctx.json {
        let mut doc = status_document(&row, &counts);
        super::sms_status::annotate(&ctx.config, &mut doc);
        super::print_json(&doc);
    } else {
        print_status(&row, &counts, ctx.config.general.timezone);
        if let Some(line) = super::sms_status::line(&ctx.config, &counts) {
            println!("{line}");
        }
    }
    let failed: u64 = counts.values().map(|c| c.failed).sum();
    let left: u64 = counts.values().map(ChannelCounts::unsettled).sum();
    if failed > 0 || left > 0 {
        return Err(Error::DeliveriesFailed(format!(
            "alert {alert_id}: {failed} deliveries failed, {left} not finished (see `allerta status {alert_id} --failed`)"
        )));
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
