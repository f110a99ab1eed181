//! `resume` and `retry`: finish what a crash, a kill or a dead provider
//! left unfinished — never what an officer stopped. Without an id (the
//! timer) `resume` takes only alerts left `sending`, skips those a live
//! process holds, and never touches a `paused` one. With an id it asks for
//! confirmation like `send`. Cancelled and superseded alerts stay dead.

use serde_json::json;

use super::confirm::{Screen, heading};
use super::run::{self, Lease};
use super::{Session, approval};
use crate::domain::{ChannelId, MsgType};
use crate::error::Error;
use crate::ledger::{AlertRow, AlertState, DeliveryState, Ledger};

/// What the timer's `resume` did with one alert.
pub enum Resumed {
    Done {
        id: String,
    },
    /// A live process holds it: left to that process.
    Busy {
        id: String,
        holder: String,
    },
    Failed {
        id: String,
        error: Error,
    },
}

/// `resume` without an id: every alert left `sending`, oldest first.
pub async fn resume_all(s: &Session<'_>) -> Result<(Ledger, Vec<Resumed>), Error> {
    let mut ledger = Ledger::open(&s.config.general.database)?;
    approval::expire(s, &mut ledger)?;
    let mut results = Vec::new();
    for id in ledger.unfinished_alerts()? {
        // Only held deliveries not due yet (an escalation step, a call's
        // next try): nothing to do this minute.
        if !ledger.has_work(&id, crate::ledger::now_ms())? {
            continue;
        }
        let lease = match Lease::try_take(&ledger, &id)? {
            Ok(lease) => lease,
            Err(holder) => {
                results.push(Resumed::Busy { id, holder });
                continue;
            }
        };
        let row = ledger.alert(Some(&id))?;
        if let Err(error) = run::check_transports(s.config, &row) {
            lease.release(&ledger)?;
            results.push(Resumed::Failed { id, error });
            continue;
        }
        ledger.audit(s.actor, "resume", Some(&id), &json!({ "timer": true }))?;
        s.notify.note(&format!("resuming alert {id}"));
        ledger = run::deliver(s, ledger, lease).await?;
        results.push(Resumed::Done { id });
    }
    Ok((ledger, results))
}

/// Refuses to act on an alert that must not be sent again: cancelled,
/// superseded by an update, rejected, or waiting for its approver.
pub fn check_alive(ledger: &Ledger, row: &AlertRow, verb: &str) -> Result<(), Error> {
    let thread = ledger.thread(&row.thread_id)?;
    let later = thread
        .iter()
        .skip_while(|id| *id != &row.id)
        .skip(1)
        .map(|id| ledger.alert(Some(id)))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(cancel) = later.iter().find(|a| a.msg_type == MsgType::Cancel) {
        return Err(Error::Input(format!(
            "alert {} was cancelled by {}: it is never sent again (nothing to {verb}; send a new alert if needed)",
            row.id, cancel.id
        )));
    }
    match row.state {
        AlertState::Cancelled => Err(Error::Input(format!(
            "alert {} was cancelled: it is never sent again (nothing to {verb}; send a new alert if needed)",
            row.id
        ))),
        AlertState::Rejected => Err(Error::Input(format!(
            "alert {} was rejected under the two-person rule: nothing to {verb}; send it again if it is still needed",
            row.id
        ))),
        AlertState::AwaitingApproval => Err(Error::Input(format!(
            "alert {} is waiting for a second approver: `allerta approve {}` (or `allerta reject {}`)",
            row.id, row.id, row.id
        ))),
        _ => match later.iter().rev().find(|a| a.msg_type == MsgType::Update) {
            Some(update) => Err(Error::Input(format!(
                "alert {} was superseded by update {}: its old text is never sent again (to {verb}, act on {})",
                row.id, update.id, update.id
            ))),
            None => Ok(()),
        },
    }
}

/// `resume ID` (and `send --key` of an existing alert).
pub async fn resume_one(s: &Session<'_>, mut ledger: Ledger, id: &str) -> Result<Ledger, Error> {
    approval::expire(s, &mut ledger)?;
    let row = ledger.alert(Some(id))?;
    check_alive(&ledger, &row, "resume")?;
    let state = row.state;
    if state == AlertState::Settled {
        s.notify
            .note(&format!("alert {id} is settled: nothing left to send"));
        return Ok(ledger);
    }
    run::check_transports(s.config, &row)?;
    let lease = Lease::take(&ledger, id)?;
    let asked = (|| -> Result<(), Error> {
        let outside =
            ledger.outside_drill(id, &[DeliveryState::Pending, DeliveryState::Sending])?;
        if state == AlertState::Paused || outside > 0 {
            s.consent
                .obtain(&resume_screen(&ledger, &row, state, outside)?)?;
        }
        Ok(())
    })();
    if let Err(e) = asked {
        lease.release(&ledger)?;
        return Err(e);
    }
    if state == AlertState::Paused {
        ledger.transition(id, AlertState::Paused, AlertState::Sending)?;
    }
    ledger.audit(
        s.actor,
        "resume",
        Some(id),
        &json!({ "from": state.as_str(), "identity": s.identity }),
    )?;
    run::deliver(s, ledger, lease).await
}

fn resume_screen(
    ledger: &Ledger,
    row: &AlertRow,
    state: AlertState,
    outside: u64,
) -> Result<Screen, Error> {
    let status = row.status;
    let counts = ledger.counts(&row.id)?;
    let mut lines = vec![format!("{} — \"{}\"", row.template, row.headline)];
    if state == AlertState::Paused {
        lines.push("This alert was PAUSED by an operator (Ctrl-C).".into());
    }
    for (channel, c) in &counts {
        if c.unsettled() > 0 {
            lines.push(format!("  {channel:<9} {} left to send", c.unsettled()));
        }
    }
    lines.push(format!("{outside} of them outside the drill audience"));
    Ok(Screen {
        status,
        heading: heading(status, "resume"),
        lines,
        question: "Send the rest of this alert now?".into(),
    })
}

/// `retry ID`: failed deliveries get another round.
pub async fn retry(
    s: &Session<'_>,
    id: &str,
    channel: Option<ChannelId>,
) -> Result<(Ledger, usize), Error> {
    let mut ledger = Ledger::open(&s.config.general.database)?;
    let row = ledger.alert(Some(id))?;
    check_alive(&ledger, &row, "retry")?;
    if row.state == AlertState::Paused {
        return Err(Error::Input(format!(
            "alert {id} is paused: `allerta resume {id}` sends the rest, `allerta cancel {id}` stops it"
        )));
    }
    run::check_transports(s.config, &row)?;
    // The lease first: nothing of the alert changes state before it is ours.
    let lease = Lease::take(&ledger, id)?;
    let prepared = (|| -> Result<(), Error> {
        let failed = ledger.outside_drill(id, &[DeliveryState::Failed])?;
        if failed > 0 {
            let status = row.status;
            let screen = Screen {
                status,
                heading: heading(status, "retry"),
                lines: vec![
                    format!("{} — \"{}\"", row.template, row.headline),
                    format!(
                        "{failed} failed deliveries outside the drill audience get another round"
                    ),
                ],
                question: "Retry them now?".into(),
            };
            s.consent.obtain(&screen)?;
        }
        Ok(())
    })();
    if let Err(e) = prepared {
        lease.release(&ledger)?;
        return Err(e);
    }
    let n = ledger.requeue_failed(id, channel)?;
    ledger.audit(
        s.actor,
        "retry",
        Some(id),
        &json!({ "channel": channel, "requeued": n }),
    )?;
    s.notify.note(&format!("{n} failed deliveries re-queued"));
    let ledger = run::deliver(s, ledger, lease).await?;
    Ok((ledger, n))
}
