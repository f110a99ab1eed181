//! `allerta update ALERT_ID TEMPLATE --var…`: a CAP Update that references
//! the alert, sent to the same audience (the original's deliveries) on
//! every channel; on the web it replaces the original's banner and feed
//! entry. Also the shared checks of follow-ups (`update`, `cancel`).

use std::collections::BTreeMap;

use chrono::Utc;
use clap::Args;
use serde_json::json;

use super::{Ctx, deliver, send};
use crate::audience::{Audience, Selector};
use crate::domain::{AlertId, CapStatus, ChannelId, MsgType, ZoneId};
use crate::error::Error;
use crate::ledger::{AlertRow, FollowUp, Ledger, copy_deliveries, supersede_pending};
use crate::template::Template;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The alert to update (the latest of its chain)
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
    let config = &ctx.config;
    let mut ledger = Ledger::open(&config.general.database)?;
    let original = ledger.alert(Some(&args.alert_id))?;
    check_follow_up(&ledger, &original, "update")?;
    let status = parse_status(&original)?;
    let template = Template::load(&config.general.templates_dir, &args.template)?;
    let counts = ledger.follow_up_counts(&original.id, FollowUp::Update)?;
    if counts.is_empty() {
        return Err(Error::Input(format!(
            "alert {} has no recipients left to update (every delivery was skipped)",
            original.id
        )));
    }
    let requested: Vec<ChannelId> = counts.keys().copied().collect();
    let prepared = send::prepare(
        config,
        template,
        &args.vars,
        status,
        MsgType::Update,
        references(&original),
        stored_audience(&original.audience),
        &requested,
        args.expires.as_deref(),
    )?;
    deliver::build_channels(config, &prepared.channels)?;
    if status == CapStatus::Actual && !args.yes {
        send::confirm(ctx, &prepared, &scan(&counts), 0)?;
    }

    let id = AlertId::generate(Utc::now());
    let new = send::new_alert(ctx, &prepared, &id, None);
    ledger.plan(&new, |planner| -> Result<(), Error> {
        copy_deliveries(
            planner.conn(),
            id.as_str(),
            &original.id,
            FollowUp::Update,
            &prepared.channels,
        )?;
        supersede_pending(planner.conn(), &original.id, id.as_str())?;
        Ok(())
    })?;
    ledger.audit(
        &ctx.actor,
        "update",
        Some(id.as_str()),
        &json!({ "updates": original.id, "template": prepared.template.id,
                 "variables": prepared.vars, "channels": prepared.channels }),
    )?;
    if !ctx.json {
        eprintln!(
            "update {id} of alert {} created ({}, {})",
            original.id,
            prepared.template.id,
            status.as_str()
        );
        for s in &prepared.skipped_channels {
            eprintln!("note: not sent on {s}");
        }
    }
    deliver::deliver_and_report(ctx, ledger, id.as_str()).await
}

/// An alert can be updated or cancelled only while it is the live end of
/// its chain.
pub(super) fn check_follow_up(ledger: &Ledger, alert: &AlertRow, verb: &str) -> Result<(), Error> {
    if alert.msg_type == MsgType::Cancel.as_str() {
        return Err(Error::Input(format!(
            "alert {} is itself a Cancel: there is nothing to {verb}",
            alert.id
        )));
    }
    match ledger.successor(&alert.id)? {
        Some((next, kind)) if kind == MsgType::Update.as_str() => Err(Error::Input(format!(
            "alert {} was replaced by update {next}: {verb} {next} instead",
            alert.id
        ))),
        Some((next, _)) => Err(Error::Input(format!(
            "alert {} was already cancelled by {next}",
            alert.id
        ))),
        None if alert.state == "cancelled" => Err(Error::Input(format!(
            "alert {} was already cancelled",
            alert.id
        ))),
        None => Ok(()),
    }
}

pub(super) fn parse_status(alert: &AlertRow) -> Result<CapStatus, Error> {
    alert.status.parse::<CapStatus>().map_err(|_| {
        Error::Runtime(format!(
            "alert {}: unknown status `{}` in the ledger",
            alert.id, alert.status
        ))
    })
}

/// The whole chain: what the original referenced, then the original.
pub(super) fn references(alert: &AlertRow) -> Vec<String> {
    let mut refs = alert.references.clone();
    refs.push(alert.id.clone());
    refs
}

/// The audience as stored by `send` (for the CAP `<area>`).
pub(super) fn stored_audience(value: &serde_json::Value) -> Audience {
    let selectors = value
        .get("selectors")
        .and_then(|s| s.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|s| {
                    let id = s.get("id").and_then(|v| v.as_str());
                    match (s.get("kind").and_then(|v| v.as_str()), id) {
                        (Some("all"), _) => Some(Selector::All),
                        (Some("zone"), Some(z)) => Some(Selector::Zone(ZoneId::declared(z))),
                        (Some("group"), Some(g)) => Some(Selector::Group(g.to_owned())),
                        _ => None,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Audience { selectors }
}

/// Recipient counts for the confirmation prompt.
pub(super) fn scan(counts: &BTreeMap<ChannelId, u64>) -> send::Scan {
    send::Scan::from_counts(counts.clone())
}
