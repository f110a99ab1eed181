//! The fan-out plan: the alert row and one delivery per (channel, address),
//! written in one transaction that is on disk before the first message
//! leaves. Each delivery remembers whether its recipient is outside the
//! drill audience, for the confirmation of later follow-ups and retries.

use std::collections::BTreeMap;

use chrono::Utc;
use ring::digest::{SHA256, digest};
use serde_json::json;

use super::{Prepared, Session};
use crate::audience::Audience;
use crate::config::Config;
use crate::domain::{AlertId, CapStatus, ChannelId, Recipient};
use crate::error::Error;
use crate::ledger::{AlertState, NewAlert, Planner};

/// What an idempotency key stands for: template, variables, status,
/// audience and channels. The same key with another fingerprint is a
/// different alert, never a resume of the first (SPEC §11).
pub fn fingerprint(p: &Prepared) -> String {
    fingerprint_of(&p.template.id, &p.vars, p.status, &p.audience, &p.channels)
}

fn fingerprint_of(
    template: &str,
    vars: &BTreeMap<String, String>,
    status: CapStatus,
    audience: &Audience,
    channels: &[ChannelId],
) -> String {
    let mut channels: Vec<&str> = channels.iter().map(|c| c.as_str()).collect();
    channels.sort_unstable();
    let canonical = json!({
        "template": template,
        "variables": vars,
        "status": status.as_str(),
        "audience": audience.describe(),
        "channels": channels,
    });
    digest(&SHA256, canonical.to_string().as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The transports of `channels` as configured now.
pub fn transports(config: &Config, channels: &[ChannelId]) -> BTreeMap<String, String> {
    channels
        .iter()
        .filter_map(|c| {
            config
                .channels
                .transport_kind(*c)
                .map(|k| (c.to_string(), k.to_owned()))
        })
        .collect()
}

/// The alert row of a new message.
pub fn new_alert(
    s: &Session<'_>,
    p: &Prepared,
    id: &AlertId,
    thread_id: Option<&str>,
    key: Option<String>,
    state: AlertState,
) -> NewAlert {
    let approval_deadline = (state == AlertState::AwaitingApproval)
        .then_some(s.config.approval.as_ref())
        .flatten()
        .and_then(|a| chrono::Duration::from_std(a.timeout).ok())
        .map(|t| (Utc::now() + t).to_rfc3339());
    NewAlert {
        id: id.to_string(),
        fingerprint: key.as_ref().map(|_| fingerprint(p)),
        idem_key: key,
        thread_id: thread_id.unwrap_or(id.as_str()).to_owned(),
        transports: json!(transports(s.config, &p.all_channels())),
        state,
        creator: s.identity.clone(),
        approval_deadline,
        template: p.template.id.clone(),
        variables: json!(p.vars),
        status: p.status,
        msg_type: p.msg_type,
        references: p.references.clone(),
        audience: json!(p.audience),
        channels: p.all_channels(),
        rendered: serde_json::to_value(&p.rendered).unwrap_or_default(),
        headline: p.rendered.headline().to_owned(),
        created_at: Utc::now().to_rfc3339(),
        expires_at: p.expires_at.map(|t| t.to_rfc3339()),
        operator: s.actor.operator.clone(),
        host: s.actor.host.clone(),
    }
}

/// The plan's pass, inside its transaction: one delivery per
/// (channel, address). The contacts come from the registry (`registry::
/// ensure` ran just before, so it holds exactly the files as they are):
/// its first chunk now, the rest while the first messages go out. Invalid contact rows roll the whole plan back (exit 2,
/// nothing sent) unless `skip_invalid`, which records them.
pub fn fill(
    config: &Config,
    p: &Prepared,
    drill: &Audience,
    planner: &mut Planner<'_>,
    problems: &[String],
    skip_invalid: bool,
) -> Result<(), Error> {
    let default_lang = &config.general.default_language;
    if !problems.is_empty() {
        if !skip_invalid {
            // Returning an error rolls the whole plan back: nothing is sent.
            return Err(super::reach::contact_problems(problems));
        }
        planner.skipped_rows.extend(problems.iter().cloned());
    }
    let audience = super::registry::filter(&p.audience);
    // Escalation steps (SPEC §14): planned now, held until due.
    let holds = super::escalation::holds(p, crate::ledger::now_ms());
    planner.add_from_registry(
        &p.channels,
        &holds,
        &audience,
        &super::registry::filter(drill),
        default_lang,
    )?;
    if p.channels.contains(&ChannelId::Telegram) {
        for sub in planner.active_subscribers()? {
            // A contact giving the same chat id keeps it, even when its
            // chunk is planned later.
            if p.audience.matches(&sub.zones, &[])
                && !planner.registry_gives(ChannelId::Telegram, &sub.chat, &audience)?
            {
                let outside = !drill.matches(&sub.zones, &[]);
                planner.add(
                    ChannelId::Telegram,
                    &sub.chat,
                    &Recipient::Subscriber(sub.chat.clone()),
                    &sub.language,
                    outside,
                )?;
            }
        }
        let broadcast = config
            .channels
            .telegram
            .as_ref()
            .and_then(|t| t.broadcast_chat.as_deref());
        // Exercise and Test never reach a broadcast channel (SPEC §11).
        if let Some(chat) = broadcast
            && p.status == CapStatus::Actual
        {
            planner.add(
                ChannelId::Telegram,
                chat,
                &Recipient::Broadcast,
                default_lang,
                true,
            )?;
        }
    }
    if p.channels.contains(&ChannelId::Banner) {
        // Exercise and Test only ever reach the drill banner files.
        let public = p.status == CapStatus::Actual;
        let address = if public { "public" } else { "drill" };
        planner.add(
            ChannelId::Banner,
            address,
            &Recipient::Public,
            default_lang,
            public,
        )?;
    }
    // One public post per social account, for Actual alerts only (SPEC
    // §11; `request::prepare` already left them out of drills and tests).
    for channel in ChannelId::SOCIAL {
        if p.channels.contains(&channel)
            && p.status == CapStatus::Actual
            && let Some(account) = crate::channel::social::account(config, channel)
        {
            planner.add(channel, &account, &Recipient::Public, default_lang, true)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::Selector;

    fn fp(status: CapStatus, zone: &str, livello: &str, channels: &[ChannelId]) -> String {
        let vars = BTreeMap::from([("livello".to_owned(), livello.to_owned())]);
        let audience = Audience {
            selectors: vec![Selector::Zone(crate::domain::ZoneId::declared(zone))],
        };
        fingerprint_of("allerta-meteo", &vars, status, &audience, channels)
    }

    #[test]
    fn the_same_alert_has_the_same_fingerprint_whatever_the_channel_order() {
        let a = fp(
            CapStatus::Actual,
            "centro",
            "rosso",
            &[ChannelId::Sms, ChannelId::Email],
        );
        let b = fp(
            CapStatus::Actual,
            "centro",
            "rosso",
            &[ChannelId::Email, ChannelId::Sms],
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn status_audience_variables_and_channels_each_change_it() {
        let base = fp(CapStatus::Actual, "centro", "rosso", &[ChannelId::Sms]);
        for other in [
            fp(CapStatus::Exercise, "centro", "rosso", &[ChannelId::Sms]),
            fp(CapStatus::Test, "centro", "rosso", &[ChannelId::Sms]),
            fp(CapStatus::Actual, "fibbiana", "rosso", &[ChannelId::Sms]),
            fp(CapStatus::Actual, "centro", "giallo", &[ChannelId::Sms]),
            fp(CapStatus::Actual, "centro", "rosso", &[ChannelId::Email]),
        ] {
            assert_ne!(base, other);
        }
    }
}
