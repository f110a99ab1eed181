//! `resume` and `retry`: finish what a crash, a kill or a dead provider
//! left unfinished (the rules are in `alert::resume`).

use clap::Args;
use serde_json::json;

use super::{Ctx, deliver};
use crate::alert::resume::Resumed;
use crate::domain::ChannelId;
use crate::error::Error;
use crate::ledger::Ledger;

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// Alert id (default: every alert left sending by a crash, a kill or a
    /// reboot — never a paused one)
    alert_id: Option<String>,
    /// Do not ask for confirmation (`resume ID` of an alert that reaches
    /// people outside the drill audience, or of a paused one)
    #[arg(long)]
    yes: bool,
}

#[derive(Args, Debug)]
pub struct RetryArgs {
    alert_id: String,
    /// Only this channel
    #[arg(long)]
    channel: Option<String>,
    /// Do not ask for confirmation
    #[arg(long)]
    yes: bool,
}

pub async fn resume(ctx: &Ctx, args: ResumeArgs) -> Result<(), Error> {
    let notes = deliver::Notes::new(ctx);
    let session = deliver::session(ctx, args.yes, &notes);
    if let Some(id) = &args.alert_id {
        let ledger = Ledger::open(&ctx.config.general.database)?;
        let id = ledger.alert(Some(id))?.id;
        let ledger = crate::alert::resume::resume_one(&session, ledger, &id).await?;
        return deliver::report(ctx, &ledger, &id);
    }
    let (ledger, results) = crate::alert::resume::resume_all(&session).await?;
    let mut worst: Option<Error> = None;
    let mut docs = Vec::new();
    for r in results {
        match r {
            Resumed::Busy { id, holder } => {
                notes_line(
                    ctx,
                    &format!("alert {id} is being sent right now by {holder}; left to it"),
                );
            }
            Resumed::Failed { id, error } => {
                eprintln!("error: alert {id}: {error}");
                worst.get_or_insert(error);
            }
            Resumed::Done { id } => {
                let row = ledger.alert(Some(&id))?;
                let counts = ledger.counts(&id)?;
                if ctx.json {
                    docs.push(deliver::status_document(&row, &counts));
                } else {
                    deliver::print_status(&row, &counts, ctx.config.general.timezone);
                }
                let failed: u64 = counts.values().map(|c| c.failed + c.unsettled()).sum();
                if failed > 0 && worst.is_none() {
                    worst = Some(Error::DeliveriesFailed(format!(
                        "alert {id}: {failed} deliveries failed or unfinished"
                    )));
                }
            }
        }
    }
    if ctx.json {
        super::print_json(&json!({ "resumed": docs }));
    } else if docs.is_empty() && worst.is_none() {
        println!("nothing to resume: every alert is settled, paused or held by a live sender");
    }
    worst.map_or(Ok(()), Err)
}

fn notes_line(ctx: &Ctx, text: &str) {
    if !ctx.json {
        eprintln!("{text}");
    }
}

pub async fn retry(ctx: &Ctx, args: RetryArgs) -> Result<(), Error> {
    let channel = args
        .channel
        .as_deref()
        .map(|c| c.parse::<ChannelId>().map_err(Error::Input))
        .transpose()?;
    let notes = deliver::Notes::new(ctx);
    let session = deliver::session(ctx, args.yes, &notes);
    let id = Ledger::open(&ctx.config.general.database)?
        .alert(Some(&args.alert_id))?
        .id;
    let (ledger, _) = crate::alert::resume::retry(&session, &id, channel).await?;
    deliver::report(ctx, &ledger, &id)
}
