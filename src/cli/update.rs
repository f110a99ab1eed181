//! `allerta update ID TEMPLATE --var…`: a CAP Update of the alert's thread
//! (any id of it), sent to the same audience; on the web it replaces the
//! thread's banner and feed entry (rules in `alert::followup`).

use clap::Args;

use super::{Ctx, deliver};
use crate::alert::followup::{self, UpdateRequest};
use crate::error::Error;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The alert to update: any id of its thread (the latest message is updated)
    alert_id: String,
    /// Template of the update (file name in templates/ without .toml)
    template: String,
    /// Template variable, NAME=VALUE (repeat)
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = super::parse_var)]
    vars: Vec<(String, String)>,
    /// Validity, e.g. 12h or 2d (default: the template's expires_after)
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
    /// Do not ask for confirmation
    #[arg(long)]
    yes: bool,
}

pub async fn run(ctx: &Ctx, args: UpdateArgs) -> Result<(), Error> {
    let notes = deliver::Notes::new(ctx);
    let session = deliver::session(ctx, args.yes, &notes);
    let request = UpdateRequest {
        alert_id: args.alert_id,
        template: args.template,
        vars: args.vars,
        expires: args.expires,
    };
    let (id, ledger) = followup::update(&session, &request).await?;
    deliver::report(ctx, &ledger, &id)
}
