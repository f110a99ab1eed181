//! `send`: a new alert. Validate everything, resolve an idempotency key,
//! count who it reaches, confirm beyond the drill audience, hold it for a
//! second approver when the two-person rule applies, write the plan
//! durably, then send.

use chrono::Utc;
use serde_json::json;

use super::confirm::{Screen, heading};
use super::reach::Reach;
use super::request::{self, Prepared, SendRequest};
use super::run::{self, Lease};
use super::{Session, plan, resume};
use crate::audience::Audience;
use crate::channel::Channel;
use crate::domain::{AlertId, MsgType};
use crate::error::Error;
use crate::ledger::{AlertState, Ledger};
use crate::template::{Template, gsm};

/// How a `send` ended (when it did not fail).
pub enum Sent {
    /// `--dry-run`: what would be sent; nothing was written.
    DryRun(Box<DryRun>),
    /// Planned and waiting for `allerta approve ID`.
    AwaitingApproval { id: String },
    /// Sent (or resumed through its key); the ledger for the report.
    Done { id: String, ledger: Ledger },
}

pub struct DryRun {
    pub prepared: Prepared,
    pub reach: Reach,
    pub transports: Vec<std::sync::Arc<dyn Channel>>,
}

pub async fn send(s: &Session<'_>, req: &SendRequest) -> Result<Sent, Error> {
    let config = s.config;
    let status = req.status();
    let audience = request::resolve_audience(config, &req.zones, &req.groups, req.all, req.drill)?;
    let template = Template::load(&config.general.templates_dir, &req.template)?;
    let requested = request::parse_channels(&req.channels)?;
    let prepared = request::prepare(
        config,
        template,
        &req.vars,
        status,
        MsgType::Alert,
        Vec::new(),
        audience,
        &requested,
        req.expires.as_deref(),
    )?;
    let transports = run::build_channels(config, &prepared.all_channels())?;
    let drill = request::drill_audience(config)?;

    if req.dry_run {
        let reach = Reach::count(config, &prepared, &drill, req.skip_invalid)?;
        return Ok(Sent::DryRun(Box::new(DryRun {
            prepared,
            reach,
            transports,
        })));
    }

    // An idempotent re-run resumes the alert its key created — only if the
    // key stands for the same alert.
    if let Some(key) = &req.key {
        let mut ledger = Ledger::open(&config.general.database)?;
        if let Some((id, stored)) = ledger.alert_by_key(key)? {
            let wanted = plan::fingerprint(&prepared);
            if stored != wanted {
                let row = ledger.alert(Some(&id))?;
                return Err(Error::Input(format!(
                    "--key `{key}` already belongs to alert {id} ({} {}, template {}, audience {}): this command asks for a different alert. Use another key, or `allerta status {id}`",
                    row.status,
                    row.msg_type,
                    row.template,
                    stored_audience(&row.audience).describe()
                )));
            }
            s.notify.note(&format!(
                "alert {id} was already created with key `{key}`: resuming it"
            ));
            ledger.audit(
                s.actor,
                "send --key (resume)",
                Some(&id),
                &json!({ "key": key }),
            )?;
            let ledger = resume::resume_one(s, ledger, &id).await?;
            return Ok(Sent::Done { id, ledger });
        }
    }

    // Counting takes a pass over the contacts: needed only to decide on
    // and show the confirmation. Without it the plan's own pass still
    // validates every row before anything leaves.
    if !s.consent.is_given() {
        let reach = Reach::count(config, &prepared, &drill, req.skip_invalid)?;
        if reach.outside_drill > 0 {
            s.consent.obtain(&send_screen(s, &prepared, &reach))?;
        }
    }

    let needs_approval = config
        .approval
        .as_ref()
        .is_some_and(|a| a.statuses.contains(&status));
    let state = if needs_approval {
        AlertState::AwaitingApproval
    } else {
        AlertState::Sending
    };
    let mut ledger = Ledger::open(&config.general.database)?;
    // The contact files as validated rows: parsed again only when they
    // changed, so a large audience is planned in one statement.
    super::registry::ensure(config, &mut ledger)?;
    let problems = ledger.registry_problems()?;
    let id = AlertId::generate(Utc::now());
    let new = plan::new_alert(s, &prepared, &id, None, req.key.clone(), state);
    ledger.plan(&new, |planner| {
        plan::fill(
            config,
            &prepared,
            &drill,
            planner,
            &problems,
            req.skip_invalid,
        )
    })?;
    ledger.audit(
        s.actor,
        "send",
        Some(id.as_str()),
        &json!({ "template": prepared.template.id, "variables": prepared.vars, "status": status.as_str(),
                 "audience": prepared.audience.describe(), "channels": prepared.channels, "key": req.key,
                 "identity": s.identity, "state": state.as_str() }),
    )?;
    if needs_approval {
        // The approver is shown every recipient: plan them all now.
        ledger.finish_planning(id.as_str())?;
        return Ok(Sent::AwaitingApproval { id: id.to_string() });
    }
    s.notify.note(&format!(
        "alert {id} created ({}, {})",
        prepared.template.id,
        status.as_str()
    ));
    for skipped in &prepared.skipped_channels {
        s.notify.note(&format!("note: not sent on {skipped}"));
    }
    let lease = Lease::take(&ledger, id.as_str())?;
    let ledger = run::deliver(s, ledger, lease).await?;
    Ok(Sent::Done {
        id: id.to_string(),
        ledger,
    })
}

/// The confirmation screen of a new alert.
pub fn send_screen(s: &Session<'_>, p: &Prepared, reach: &Reach) -> Screen {
    let mut lines = vec![
        format!("{} — \"{}\"", p.template.title, p.rendered.headline()),
        format!("audience: {}", p.audience.describe()),
    ];
    lines.extend(reach.lines(p));
    if let Some(sms) = p.rendered.text(
        crate::domain::ChannelId::Sms,
        &s.config.general.default_language,
    ) {
        let a = gsm::analyze(&sms.text);
        lines.push(format!(
            "SMS ({}, {} segment(s)): {}",
            a.encoding.as_str(),
            a.segments,
            sms.text
        ));
    }
    for (lang, info) in &p.rendered.info {
        lines.push(format!("[{lang}] {}", info.headline));
    }
    for step in &p.escalation {
        lines.push(format!(
            "escalation: after {}, {} to whoever has not acknowledged",
            super::escalation::describe(step.after),
            step.channel
        ));
    }
    let what = match p.msg_type {
        MsgType::Alert => "new alert",
        MsgType::Update => "update",
        MsgType::Cancel => "cancel (cessata allerta)",
    };
    Screen {
        status: p.status,
        heading: heading(p.status, what),
        lines,
        question: format!("Send this {} now?", what),
    }
}

/// An audience as stored with an alert (for the CAP `<area>` of
/// follow-ups and for what the officer is shown).
pub fn stored_audience(value: &serde_json::Value) -> Audience {
    serde_json::from_value(value.clone()).unwrap_or_default()
}
