//! `allerta cancel ALERT_ID [--template cessata-allerta]`: stops what the
//! alert has not sent yet (`pending` → `skipped`), sends the "cessata
//! allerta" message to those it already reached, and publishes a CAP
//! Cancel; the alert leaves the banner and the feed. All ledger changes are
//! one transaction.

use chrono::Utc;
use clap::Args;
use serde_json::json;

use super::update::{check_follow_up, parse_status, references, scan, stored_audience};
use super::{Ctx, deliver, send};
use crate::domain::{AlertId, CapStatus, ChannelId, MsgType};
use crate::error::Error;
use crate::ledger::{FollowUp, Ledger, copy_deliveries, stop_original};
use crate::template::Template;

#[derive(Args, Debug)]
pub struct CancelArgs {
    /// The alert to cancel (the latest of its chain)
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
    let config = &ctx.config;
    let mut ledger = Ledger::open(&config.general.database)?;
    let original = ledger.alert(Some(&args.alert_id))?;
    check_follow_up(&ledger, &original, "cancel")?;
    let status = parse_status(&original)?;
    let template = Template::load(&config.general.templates_dir, &args.template)?;

    let mut vars = args.vars.clone();
    if template.variables.contains_key("evento") && !vars.iter().any(|(k, _)| k == "evento") {
        // The drill prefix is added again when the revocation renders.
        let prefix = format!("{} ", config.drill.prefix);
        let headline = match status {
            CapStatus::Actual => original.headline.as_str(),
            _ => original
                .headline
                .strip_prefix(&prefix)
                .unwrap_or(&original.headline),
        };
        vars.push(("evento".to_owned(), headline.to_owned()));
    }
    let counts = ledger.follow_up_counts(&original.id, FollowUp::Cancel)?;
    // Nobody reached yet: render for the original's channels (to check the
    // template), plan no message.
    let requested: Vec<ChannelId> = if counts.is_empty() {
        original
            .channels
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect()
    } else {
        counts.keys().copied().collect()
    };
    let prepared = send::prepare(
        config,
        template,
        &vars,
        status,
        MsgType::Cancel,
        references(&original),
        stored_audience(&original.audience),
        &requested,
        None,
    )?;
    deliver::build_channels(config, &prepared.channels)?;
    if status == CapStatus::Actual && !args.yes {
        send::confirm(ctx, &prepared, &scan(&counts), 0)?;
    }

    let id = AlertId::generate(Utc::now());
    let new = send::new_alert(ctx, &prepared, &id, None);
    let mut stopped = 0;
    ledger.plan(&new, |planner| -> Result<(), Error> {
        if !counts.is_empty() {
            copy_deliveries(
                planner.conn(),
                id.as_str(),
                &original.id,
                FollowUp::Cancel,
                &prepared.channels,
            )?;
        }
        stopped = stop_original(planner.conn(), &original.id, id.as_str())?;
        Ok(())
    })?;
    ledger.audit(
        &ctx.actor,
        "cancel",
        Some(&original.id),
        &json!({ "cancel_id": id.as_str(), "template": prepared.template.id,
                 "stopped": stopped, "channels": prepared.channels }),
    )?;
    if !ctx.json {
        let reached: u64 = counts.values().sum();
        eprintln!(
            "alert {} cancelled: {stopped} undelivered message(s) stopped; revocation {id} goes to the {reached} already reached",
            original.id
        );
    }
    let result = deliver::deliver_and_report(ctx, ledger, id.as_str()).await;
    // The banner delivery republished the files; this also covers an alert
    // whose banner was never reached.
    crate::web::sweep(config);
    result
}
