//! Drafts from official bulletins (SPEC §16) enter the alert layer here:
//! `send --draft ID` becomes the `send` (or, for a cessata-allerta draft,
//! the `cancel`) the officer would have typed, with every rule of §11, and
//! the draft records the alert it became.

use serde_json::json;

use super::Session;
use super::followup::{self, CancelRequest};
use super::request::{self, Prepared, SendRequest};
use super::send::{self, Sent};
use crate::config::Config;
use crate::domain::{CapStatus, MsgType};
use crate::error::Error;
use crate::ledger::{DraftRow, DraftState, Ledger};
use crate::template::Template;

/// Validates and renders what a draft would send, as `send` would: the
/// template, its variables, the audience and every channel's limits.
pub fn prepare(
    config: &Config,
    template: &str,
    vars: &[(String, String)],
    audience: &[String],
    msg_type: MsgType,
) -> Result<Prepared, Error> {
    let (zones, groups, all) = split_audience(audience);
    let audience = request::resolve_audience(config, &zones, &groups, all, false)?;
    let template = Template::load(&config.general.templates_dir, template)?;
    request::prepare(
        config,
        template,
        vars,
        CapStatus::Actual,
        msg_type,
        Vec::new(),
        audience,
        &[],
        None,
    )
}

/// `["zone:centro", "group:scuole", "all"]` as `send`'s options.
fn split_audience(audience: &[String]) -> (Vec<String>, Vec<String>, bool) {
    let mut zones = Vec::new();
    let mut groups = Vec::new();
    let mut all = false;
    for entry in audience {
        let entry = entry.trim();
        match entry.split_once(':') {
            Some(("zone", z)) => zones.push(z.trim().to_owned()),
            Some(("group", g)) => groups.push(g.trim().to_owned()),
            _ if entry == "all" => all = true,
            // Checked when the configuration loaded; an unknown form is
            // passed on as a zone so `send` names it in its error.
            _ => zones.push(entry.to_owned()),
        }
    }
    (zones, groups, all)
}

/// The `send` request a draft stands for. Options the officer gave with
/// `send --draft` (channels, expiry, drill/test, dry run) are kept. The
/// idempotency key of a real (`Actual`) send defaults to `draft-ID`, so
/// running the command twice (or after a crash) resumes the same alert
/// instead of sending a second one; a drill or test of the draft leaves it
/// pending.
pub fn send_request(draft: &DraftRow, given: &SendRequest) -> SendRequest {
    let (zones, groups, all) = split_audience(&draft.audience);
    SendRequest {
        template: draft.template.clone(),
        vars: draft
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        zones,
        groups,
        all,
        key: given.key.clone().or_else(|| {
            (given.status() == CapStatus::Actual).then(|| format!("draft-{}", draft.id))
        }),
        ..given.clone()
    }
}

/// `allerta send --draft ID`.
pub async fn send(s: &Session<'_>, id: &str, given: &SendRequest) -> Result<Sent, Error> {
    let draft = {
        let ledger = Ledger::open(&s.config.general.database)?;
        ledger.draft(id)?
    };
    match draft.state {
        DraftState::Pending => {}
        DraftState::Sent => {
            return Err(Error::Input(format!(
                "draft {} was already sent as alert {} (see `allerta status {0}`)",
                draft.id,
                draft.alert_id.as_deref().unwrap_or("?")
            )));
        }
        DraftState::Discarded => {
            return Err(Error::Input(format!(
                "draft {} was discarded by {}; nothing was sent",
                draft.id,
                draft.decided_by.as_deref().unwrap_or("?")
            )));
        }
    }
    let sent = match &draft.cancels {
        Some(alert_id) if !given.dry_run => {
            let request = CancelRequest {
                alert_id: alert_id.clone(),
                template: draft.template.clone(),
                vars: draft
                    .variables
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            };
            let (id, ledger) = followup::cancel(s, &request).await?;
            Sent::Done { id, ledger }
        }
        Some(alert_id) => {
            return Err(Error::Input(format!(
                "draft {} is the cessata-allerta of alert {alert_id}: `--dry-run` does not apply; `allerta drafts show {}` shows its text",
                draft.id, draft.id
            )));
        }
        None => send::send(s, &send_request(&draft, given)).await?,
    };
    let alert_id = match &sent {
        // A drill or a test of the draft leaves it pending for the real send.
        _ if given.status() != CapStatus::Actual && draft.cancels.is_none() => return Ok(sent),
        Sent::Done { id, .. } | Sent::AwaitingApproval { id } => id.clone(),
        Sent::DryRun(_) => return Ok(sent),
    };
    let mut ledger = Ledger::open(&s.config.general.database)?;
    ledger.decide_draft(
        draft.id,
        DraftState::Sent,
        Some(&alert_id),
        &s.actor.operator,
    )?;
    ledger.audit(
        s.actor,
        "send --draft",
        Some(&alert_id),
        &json!({ "draft": draft.id, "source": draft.source, "day": draft.day }),
    )?;
    Ok(sent)
}

/// `allerta drafts discard ID`.
pub fn discard(config: &Config, actor: &crate::Actor, id: &str) -> Result<DraftRow, Error> {
    let mut ledger = Ledger::open(&config.general.database)?;
    let draft = ledger.draft(id)?;
    if !ledger.decide_draft(draft.id, DraftState::Discarded, None, &actor.operator)? {
        return Err(Error::Input(format!(
            "draft {} is {}, not pending: only a pending draft can be discarded",
            draft.id,
            draft.state.as_str()
        )));
    }
    ledger.audit(
        actor,
        "drafts discard",
        None,
        &json!({ "draft": draft.id, "source": draft.source, "day": draft.day }),
    )?;
    ledger.draft(id).map_err(Error::from)
}
