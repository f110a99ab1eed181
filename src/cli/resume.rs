//! `resume` and `retry`: finish what a crash, a kill or a dead provider
//! left unfinished.

use clap::Args;
use serde_json::json;

use super::{Ctx, deliver};
use crate::domain::ChannelId;
use crate::error::Error;
use crate::ledger::Ledger;

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// Alert id (default: every unfinished alert)
    alert_id: Option<String>,
}

#[derive(Args, Debug)]
pub struct RetryArgs {
    alert_id: String,
    /// Only this channel
    #[arg(long)]
    channel: Option<String>,
}

pub async fn resume(ctx: &Ctx, args: ResumeArgs) -> Result<(), Error> {
    let ledger = Ledger::open(&ctx.config.general.database)?;
    let explicit = args.alert_id.is_some();
    let ids = match args.alert_id {
        Some(id) => vec![ledger.alert(Some(&id))?.id],
        None => ledger.unfinished_alerts()?,
    };
    if ids.is_empty() {
        if ctx.json {
            super::print_json(&json!({ "resumed": [] }));
        } else {
            println!("nothing to resume: every alert is settled");
        }
        return Ok(());
    }
    let mut ledger = ledger;
    let mut worst: Option<Error> = None;
    let mut docs = Vec::new();
    let owner = crate::ledger::lease_owner();
    for id in &ids {
        // Take the alert's lease before touching its `sending` deliveries:
        // while a live `send` holds it (allerta-resume.timer fires every few
        // minutes during long sends) those deliveries are in flight, not lost.
        if let Some(holder) =
            ledger.acquire_lease(id, &owner, std::time::Duration::from_secs(60))?
        {
            let message = format!("alert {id} is being sent right now by {holder}; left to it");
            if explicit {
                return Err(Error::Runtime(message));
            }
            if !ctx.json {
                eprintln!("{message}");
            }
            continue;
        }
        let reset = ledger.reset_sending(id)?;
        ledger.audit(
            &ctx.actor,
            "resume",
            Some(id),
            &json!({ "reset_sending": reset }),
        )?;
        if !ctx.json {
            eprintln!(
                "resuming alert {id} ({reset} deliveries with unknown outcome will be re-sent)"
            );
        }
        ledger = match deliver::deliver(ctx, ledger, id).await {
            Ok(l) => l,
            Err(e) => return Err(e),
        };
        let row = ledger.alert(Some(id))?;
        let counts = ledger.counts(id)?;
        if ctx.json {
            docs.push(deliver::status_document(&row, &counts));
        } else {
            deliver::print_status(&row, &counts, ctx.config.general.timezone);
        }
        let failed: u64 = counts.values().map(|c| c.failed + c.unsettled()).sum();
        if failed > 0 {
            worst = Some(Error::DeliveriesFailed(format!(
                "alert {id}: {failed} deliveries failed or unfinished"
            )));
        }
    }
    if ctx.json {
        super::print_json(&json!({ "resumed": docs }));
    }
    worst.map_or(Ok(()), Err)
}

pub async fn retry(ctx: &Ctx, args: RetryArgs) -> Result<(), Error> {
    let channel = args
        .channel
        .as_deref()
        .map(|c| c.parse::<ChannelId>().map_err(Error::Input))
        .transpose()?;
    let ledger = Ledger::open(&ctx.config.general.database)?;
    let row = ledger.alert(Some(&args.alert_id))?;
    let n = ledger.requeue_failed(&row.id, channel)?;
    ledger.audit(
        &ctx.actor,
        "retry",
        Some(&row.id),
        &json!({ "channel": channel, "requeued": n }),
    )?;
    if !ctx.json {
        eprintln!("{n} failed deliveries re-queued");
    }
    deliver::deliver_and_report(ctx, ledger, &row.id).await
}
