//! The two-person rule (SPEC §11): with `[approval]` configured, an alert
//! of a listed status is planned as `awaiting_approval` and nothing is sent
//! until a second approver — another OS user named in `approvers`, never
//! the creator — runs `allerta approve ID` (which confirms like `send` and
//! then sends). `allerta reject ID` or the timeout ends it as `rejected`
//! with nothing sent.

use serde_json::json;

use super::Session;
use super::confirm::{Screen, heading};
use super::run::{self, Lease};
use crate::error::Error;
use crate::ledger::{AlertRow, AlertState, Ledger};

/// Ends every approval whose time ran out (`rejected`, nothing sent).
pub fn expire(s: &Session<'_>, ledger: &mut Ledger) -> Result<Vec<String>, Error> {
    let now = chrono::Utc::now().to_rfc3339();
    let mut ended = Vec::new();
    for id in ledger.expired_approvals(&now)? {
        if ledger.decide_approval(&id, "timeout", false, "approval timed out: never sent")? {
            ledger.audit(s.actor, "approval timeout", Some(&id), &json!({}))?;
            s.notify.note(&format!(
                "alert {id}: nobody approved it in time; rejected, nothing was sent"
            ));
            ended.push(id);
        }
    }
    Ok(ended)
}

/// The alert `id` if it waits for approval and this OS user may decide on
/// it: an approver, or (`creator_may`, to withdraw it) its creator.
fn awaiting(
    s: &Session<'_>,
    ledger: &mut Ledger,
    id: &str,
    verb: &str,
    creator_may: bool,
) -> Result<AlertRow, Error> {
    let Some(rule) = &s.config.approval else {
        return Err(Error::Input(format!(
            "there is no two-person rule here ([approval] is not configured): nothing to {verb}"
        )));
    };
    expire(s, ledger)?;
    let row = ledger.alert(Some(id))?;
    match row.state {
        AlertState::AwaitingApproval => {}
        AlertState::Rejected => {
            return Err(Error::Input(format!(
                "alert {id} was already rejected{}: nothing was sent; send it again if still needed",
                row.decided_by
                    .as_ref()
                    .map(|b| format!(" ({b})"))
                    .unwrap_or_default()
            )));
        }
        other => {
            return Err(Error::Input(format!(
                "alert {id} is not waiting for approval (it is {other})"
            )));
        }
    }
    let creator = creator_may && row.creator == s.identity;
    if !creator && !rule.approvers.iter().any(|a| a == &s.identity) {
        return Err(Error::Input(format!(
            "`{}` is not an approver ([approval] approvers = {:?})",
            s.identity, rule.approvers
        )));
    }
    Ok(row)
}

/// `allerta approve ID`: by another approver; confirms, then sends.
pub async fn approve(s: &Session<'_>, id: &str) -> Result<Ledger, Error> {
    let mut ledger = Ledger::open(&s.config.general.database)?;
    decide_approve(s, &mut ledger, id)?;
    s.notify
        .note(&format!("alert {id} approved by {}: sending", s.identity));
    let lease = Lease::take(&ledger, id)?;
    run::deliver(s, ledger, lease).await
}

/// The officer console's approve (SPEC §17): the same rules and the same
/// record as `allerta approve`, but the sending is left to the
/// `allerta resume` timer. `serve` runs without the channels' credentials
/// and may not reach the gateways (its systemd unit), and a send must not
/// live inside one HTTP request; an approved alert is `sending`, which is
/// exactly what the timer finishes (within a minute).
pub fn approve_for_timer(s: &Session<'_>, id: &str) -> Result<(), Error> {
    let mut ledger = Ledger::open(&s.config.general.database)?;
    decide_approve(s, &mut ledger, id)?;
    s.notify.note(&format!(
        "alert {id} approved by {}: the resume timer sends it",
        s.identity
    ));
    Ok(())
}

/// Checks that this identity may approve `id` (an approver, not its
/// creator), asks for consent when it reaches beyond the drill audience,
/// and records the decision: the alert becomes `sending`.
fn decide_approve(s: &Session<'_>, ledger: &mut Ledger, id: &str) -> Result<AlertRow, Error> {
    let row = awaiting(s, ledger, id, "approve", false)?;
    if row.creator == s.identity {
        return Err(Error::Input(format!(
            "alert {id} was created by `{}`: a second approver must approve it, not its creator",
            row.creator
        )));
    }
    run::check_transports(s.config, &row)?;
    let outside = ledger.outside_drill(id, &[crate::ledger::DeliveryState::Pending])?;
    if outside > 0 {
        s.consent.obtain(&approve_screen(ledger, &row, outside)?)?;
    }
    if !ledger.decide_approval(id, &s.identity, true, "")? {
        return Err(Error::Input(format!(
            "alert {id} is no longer waiting for approval (someone decided first)"
        )));
    }
    ledger.audit(
        s.actor,
        "approve",
        Some(id),
        &json!({ "approver": s.identity, "creator": row.creator }),
    )?;
    Ok(row)
}

/// `allerta reject ID`: by an approver or the creator; nothing is sent.
pub fn reject(s: &Session<'_>, id: &str) -> Result<(), Error> {
    let mut ledger = Ledger::open(&s.config.general.database)?;
    // The creator may withdraw their own alert.
    let row = awaiting(s, &mut ledger, id, "reject", true)?;
    let reason = format!("rejected by {}: never sent", s.identity);
    if !ledger.decide_approval(id, &s.identity, false, &reason)? {
        return Err(Error::Input(format!(
            "alert {id} is no longer waiting for approval (someone decided first)"
        )));
    }
    ledger.audit(
        s.actor,
        "reject",
        Some(id),
        &json!({ "by": s.identity, "creator": row.creator }),
    )?;
    s.notify.note(&format!(
        "alert {id} rejected by {}: nothing was sent",
        s.identity
    ));
    Ok(())
}

fn approve_screen(ledger: &Ledger, row: &AlertRow, outside: u64) -> Result<Screen, Error> {
    let status = row.status;
    let mut lines = vec![
        format!("{} — \"{}\"", row.template, row.headline),
        format!("created by {} at {}", row.creator, row.created_at),
        format!(
            "audience: {}",
            super::send::stored_audience(&row.audience).describe()
        ),
    ];
    for (channel, c) in ledger.counts(&row.id)? {
        lines.push(format!("  {channel:<9} {} recipient(s)", c.pending));
    }
    lines.push(format!("{outside} of them outside the drill audience"));
    Ok(Screen {
        status,
        heading: heading(status, "approval"),
        lines,
        question: "Approve and send this alert now?".into(),
    })
}
