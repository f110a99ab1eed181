//! `allerta watch [--once]`: poll the official bulletins and make drafts
//! for the officers (SPEC §16). Never sends to citizens.

use std::io::Write;

use clap::Args;
use serde_json::json;

use super::Ctx;
use crate::error::Error;
use crate::watch::{PollReport, Watcher};

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Poll every source once and exit (for a timer): 0 when every source
    /// was read, 1 when one failed
    #[arg(long)]
    once: bool,
}

pub async fn run(ctx: &Ctx, args: WatchArgs) -> Result<(), Error> {
    let watcher = Watcher::new(&ctx.config, &ctx.actor)?;
    if args.once {
        let report = watcher.poll().await;
        print_report(ctx, &report);
        return outcome(&report);
    }
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return Err(Error::Runtime("cannot listen for SIGTERM".into()));
    };
    eprintln!(
        "watch: polling every {}; SIGTERM stops it",
        humantime::format_duration(watcher.interval())
    );
    loop {
        // SIGTERM while the sources are being read stops at once (nothing
        // is recorded yet); recording, which is short, always finishes, so
        // no draft is left without its notification.
        let fetched = tokio::select! {
            fetched = watcher.fetch_all() => fetched,
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let report = watcher.record_all(fetched).await;
        print_report(ctx, &report);
        tokio::select! {
            _ = tokio::time::sleep(watcher.interval()) => {}
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    eprintln!("watch stopped");
    Ok(())
}

fn outcome(report: &PollReport) -> Result<(), Error> {
    let failed = report.failed_sources();
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|s| s.name.as_str()).collect();
        return Err(Error::Runtime(format!(
            "{} of {} source(s) could not be read: {}",
            failed.len(),
            report.sources.len(),
            names.join(", ")
        )));
    }
    if !report.notify_failures.is_empty() {
        return Err(Error::Runtime(format!(
            "{} officer notification(s) failed (the drafts are stored: `allerta drafts list`)",
            report.notify_failures.len()
        )));
    }
    Ok(())
}

/// Failures on stderr, by source name, always; the rest on stdout.
fn print_report(ctx: &Ctx, report: &PollReport) {
    for s in &report.sources {
        if let Err(e) = &s.result {
            eprintln!("watch: source {}: {e}", s.name);
        }
    }
    for f in &report.notify_failures {
        eprintln!("watch: notification to {f}");
    }
    if ctx.json {
        let sources: Vec<_> = report
            .sources
            .iter()
            .map(|s| match &s.result {
                Ok(days) => json!({
                    "name": s.name, "ok": true,
                    "days": days.iter().map(|d| json!({
                        "day": d.day, "found_in": d.found_in,
                        "levels": d.levels.iter().map(|(r, l)| (r.clone(), l.as_str())).collect::<std::collections::BTreeMap<_, _>>(),
                        "drafts": d.drafts,
                    })).collect::<Vec<_>>(),
                }),
                Err(e) => json!({ "name": s.name, "ok": false, "error": e }),
            })
            .collect();
        super::print_json(&json!({
            "sources": sources,
            "notify_failures": report.notify_failures,
        }));
    } else {
        for s in &report.sources {
            let Ok(days) = &s.result else { continue };
            for d in days {
                let levels = if d.levels.is_empty() {
                    "no alert".to_owned()
                } else {
                    d.levels
                        .iter()
                        .map(|(r, l)| format!("{r} {l}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let drafts = if d.drafts.is_empty() {
                    "no new draft".to_owned()
                } else {
                    d.drafts
                        .iter()
                        .map(|id| format!("draft {id}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                println!("{} {}: {levels} → {drafts}", s.name, d.day);
            }
            if days.is_empty() {
                println!("{}: read, no alert in force for the area", s.name);
            }
        }
    }
    let _ = std::io::stdout().flush();
}
