//! `update` and `cancel`: follow-ups of an alert thread. Either accepts
//! any id of the thread (the original or any update) and acts on its
//! latest message. An Update goes to everyone the thread is for and
//! supersedes what was not sent yet; a Cancel stops every message of the
//! thread, goes to whoever any of them reached, and its CAP `<references>`
//! name the whole thread. Cancel needs no lease: it wins over a live
//! sender, which stops at its next claim (SPEC §11).

use chrono::Utc;
use serde_json::json;

use super::reach::Reach;
use super::run::{self, Lease};
use super::send::{send_screen, stored_audience};
use super::{Session, request};
use crate::domain::{AlertId, ChannelId, MsgType};
use crate::error::Error;
use crate::ledger::{AlertRow, AlertState, FollowUp, Ledger};
use crate::template::Template;

pub struct UpdateRequest {
    pub alert_id: String,
    pub template: String,
    pub vars: Vec<(String, String)>,
    pub expires: Option<String>,
}

pub struct CancelRequest {
    pub alert_id: String,
    pub template: String,
    pub vars: Vec<(String, String)>,
}

/// The thread of `id` and its latest message.
struct Thread {
    ids: Vec<String>,
    latest: AlertRow,
}

fn thread_of(ledger: &Ledger, id: &str, verb: &str) -> Result<Thread, Error> {
    let row = ledger.alert(Some(id))?;
    let ids = ledger.thread(&row.thread_id)?;
    let latest_id = ids.last().cloned().unwrap_or_else(|| row.id.clone());
    let latest = ledger.alert(Some(&latest_id))?;
    if latest.msg_type == MsgType::Cancel {
        return Err(Error::Input(format!(
            "alert {id}: its thread was already cancelled by {}: there is nothing to {verb}",
            latest.id
        )));
    }
    match latest.state {
        AlertState::Cancelled => Err(Error::Input(format!(
            "alert {} was already cancelled: there is nothing to {verb}",
            latest.id
        ))),
        AlertState::Rejected => Err(Error::Input(format!(
            "alert {} was rejected and never sent: there is nothing to {verb}",
            latest.id
        ))),
        AlertState::AwaitingApproval if verb == "update" => Err(Error::Input(format!(
            "alert {} is waiting for approval and was not sent: `allerta reject {}` and send a corrected one",
            latest.id, latest.id
        ))),
        _ => Ok(Thread { ids, latest }),
    }
}

/// Opens the ledger and the thread `id` belongs to, telling the officer
/// when the message acted on is not the one they named.
fn open_thread(s: &Session<'_>, id: &str, verb: &str) -> Result<(Ledger, Thread), Error> {
    let mut ledger = Ledger::open(&s.config.general.database)?;
    let thread = thread_of(&ledger, id, verb)?;
    // A follow-up reaches (and counts) everyone its thread is for: what a
    // sender has not planned yet is planned now.
    for member in &thread.ids {
        ledger.finish_planning(member)?;
    }
    if thread.latest.id != id {
        let acting = match verb {
            "cancel" => "cancelling the whole thread".to_owned(),
            _ => format!(
                "{verb} acts on the thread's latest message {}",
                thread.latest.id
            ),
        };
        s.notify.warn(&format!(
            "alert {id} was updated by {}: {acting}",
            thread.latest.id
        ));
    }
    Ok((ledger, thread))
}

pub async fn update(s: &Session<'_>, req: &UpdateRequest) -> Result<(String, Ledger), Error> {
    let config = s.config;
    let (mut ledger, thread) = open_thread(s, &req.alert_id, "update")?;
    let target = &thread.latest;
    let status = target.status;
    let template = Template::load(&config.general.templates_dir, &req.template)?;
    let counts = ledger.follow_up_counts(&target.id, FollowUp::Update)?;
    if counts.is_empty() {
        return Err(Error::Input(format!(
            "alert {} has no recipients left to update (every delivery was skipped)",
            target.id
        )));
    }
    let requested: Vec<ChannelId> = counts.keys().copied().collect();
    let prepared = request::prepare(
        config,
        template,
        &req.vars,
        status,
        MsgType::Update,
        thread.ids.clone(),
        stored_audience(&target.audience),
        &requested,
        req.expires.as_deref(),
    )?;
    run::build_channels(config, &prepared.channels)?;
    let outside = ledger.outside_drill(&target.id, FollowUp::Update.states())?;
    if outside > 0 {
        let reach = Reach::from_counts(counts.clone(), outside);
        s.consent.obtain(&send_screen(s, &prepared, &reach))?;
    }
    let abandoned = ledger
        .lease_holder(&target.id, &crate::ledger::lease_owner())?
        .is_none();
    let id = AlertId::generate(Utc::now());
    let new = super::plan::new_alert(
        s,
        &prepared,
        &id,
        Some(&target.thread_id),
        None,
        AlertState::Sending,
    );
    ledger.plan(&new, |planner| -> Result<(), Error> {
        planner.copy_deliveries(
            id.as_str(),
            &target.id,
            FollowUp::Update,
            &prepared.channels,
        )?;
        planner.supersede_pending(&target.id, id.as_str(), abandoned)?;
        Ok(())
    })?;
    ledger.audit(
        s.actor,
        "update",
        Some(id.as_str()),
        &json!({ "updates": target.id, "thread": target.thread_id, "template": prepared.template.id,
                 "variables": prepared.vars, "channels": prepared.channels }),
    )?;
    s.notify.note(&format!(
        "update {id} of alert {} created ({}, {})",
        target.id,
        prepared.template.id,
        status.as_str()
    ));
    for skipped in &prepared.skipped_channels {
        s.notify.note(&format!("note: not sent on {skipped}"));
    }
    let lease = Lease::take(&ledger, id.as_str())?;
    let ledger = run::deliver(s, ledger, lease).await?;
    Ok((id.to_string(), ledger))
}

pub async fn cancel(s: &Session<'_>, req: &CancelRequest) -> Result<(String, Ledger), Error> {
    let config = s.config;
    let (mut ledger, thread) = open_thread(s, &req.alert_id, "cancel")?;
    let target = &thread.latest;
    let status = target.status;
    let template = Template::load(&config.general.templates_dir, &req.template)?;

    let mut vars = req.vars.clone();
    if template.variables.contains_key("evento") && !vars.iter().any(|(k, _)| k == "evento") {
        // The marker is added again when the revocation renders.
        let headline = match request::marker(config, status) {
            None => target.headline.as_str(),
            Some(m) => target
                .headline
                .strip_prefix(&format!("{m} "))
                .unwrap_or(&target.headline),
        };
        vars.push(("evento".to_owned(), headline.to_owned()));
    }
    let (counts, outside) = ledger.thread_cancel_counts(&thread.ids)?;
    // Nobody reached yet: render for the alert's channels (to check the
    // template), plan no message.
    let requested: Vec<ChannelId> = if counts.is_empty() {
        target
            .channels
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect()
    } else {
        counts.keys().copied().collect()
    };
    let prepared = request::prepare(
        config,
        template,
        &vars,
        status,
        MsgType::Cancel,
        thread.ids.clone(),
        stored_audience(&target.audience),
        &requested,
        None,
    )?;
    run::build_channels(config, &prepared.channels)?;
    if outside > 0 {
        let reach = Reach::from_counts(counts.clone(), outside);
        s.consent.obtain(&send_screen(s, &prepared, &reach))?;
    }

    let id = AlertId::generate(Utc::now());
    let new = super::plan::new_alert(
        s,
        &prepared,
        &id,
        Some(&target.thread_id),
        None,
        AlertState::Sending,
    );
    let mut stopped = 0;
    ledger.plan(&new, |planner| -> Result<(), Error> {
        if !counts.is_empty() {
            for message in &thread.ids {
                planner.copy_deliveries(
                    id.as_str(),
                    message,
                    FollowUp::Cancel,
                    &prepared.channels,
                )?;
            }
        }
        for message in &thread.ids {
            stopped += planner.stop_original(message, id.as_str())?;
        }
        Ok(())
    })?;
    ledger.audit(
        s.actor,
        "cancel",
        Some(&target.id),
        &json!({ "cancel_id": id.as_str(), "thread": thread.ids, "template": prepared.template.id,
                 "stopped": stopped, "channels": prepared.channels }),
    )?;
    let reached: u64 = counts.values().sum();
    s.notify.note(&format!(
        "alert {} cancelled: {stopped} undelivered message(s) stopped; revocation {id} goes to the {reached} already reached",
        target.id
    ));
    let lease = Lease::take(&ledger, id.as_str())?;
    let result = run::deliver(s, ledger, lease).await;
    // The banner delivery republished the files; this also covers an alert
    // whose banner was never reached.
    crate::web::sweep(config);
    Ok((id.to_string(), result?))
}
