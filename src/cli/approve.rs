//! `allerta approve ID` / `allerta reject ID`: the second person of the
//! two-person rule (rules in `alert::approval`). The identity is the OS
//! user, never `--operator`.

use clap::Args;
use serde_json::json;

use super::{Ctx, deliver};
use crate::error::Error;

#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The alert waiting for approval
    alert_id: String,
    /// Do not ask for confirmation
    #[arg(long)]
    yes: bool,
}

#[derive(Args, Debug)]
pub struct RejectArgs {
    /// The alert waiting for approval
    alert_id: String,
}

pub async fn approve(ctx: &Ctx, args: ApproveArgs) -> Result<(), Error> {
    let notes = deliver::Notes::new(ctx);
    let session = deliver::session(ctx, args.yes, &notes);
    let ledger = crate::alert::approval::approve(&session, &args.alert_id).await?;
    deliver::report(ctx, &ledger, &args.alert_id)
}

pub fn reject(ctx: &Ctx, args: RejectArgs) -> Result<(), Error> {
    let notes = deliver::Notes::new(ctx);
    let session = deliver::session(ctx, false, &notes);
    crate::alert::approval::reject(&session, &args.alert_id)?;
    if ctx.json {
        super::print_json(&json!({ "alert": { "id": args.alert_id, "state": "rejected" } }));
    } else {
        println!("alert {} rejected: nothing was sent", args.alert_id);
    }
    Ok(())
}
