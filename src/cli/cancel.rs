//! `allerta cancel ID [--template cessata-allerta]`: stops every message of
//! the alert's thread (any id of it), sends the "cessata allerta" to those
//! already reached, publishes a CAP Cancel (rules in `alert::followup`).

use clap::Args;

use super::{Ctx, deliver};
use crate::alert::followup::{self, CancelRequest};
use crate::error::Error;

#[derive(Args, Debug)]
pub struct CancelArgs {
    /// The alert to cancel: any id of its thread (the whole thread is cancelled)
    alert_id: String,
    /// Template of the revocation; its variable `evento` is filled with the
    /// cancelled alert's headline
    #[arg(long, default_value = "cessata-allerta")]
    template: String,
    /// Other template variables, NAME=VALUE (repeat), e.g. note=…
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = super::parse_var)]
    vars: Vec<(String, String)>,
    /// Do not ask for confirmation
    #[arg(long)]
    yes: bool,
}

pub async fn run(ctx: &Ctx, args: CancelArgs) -> Result<(), Error> {
    let notes = deliver::Notes::new(ctx);
    let session = deliver::session(ctx, args.yes, &notes);
    let request = CancelRequest {
        alert_id: args.alert_id,
        template: args.template,
        vars: args.vars,
    };
    let (id, ledger) = followup::cancel(&session, &request).await?;
    deliver::report(ctx, &ledger, &id)
}
