//! The escalation ladder (SPEC §14): optional steps ("after 10 minutes, an
//! SMS to whoever has not acknowledged; after 20, a call"). The steps'
//! deliveries are planned with the alert and *held* until their time; when
//! due, `resume` (the timer, every minute) releases those whose recipient
//! has acknowledged nothing on any channel of the alert's thread and skips
//! the others. A cancel skips every held delivery (they are `pending`).
//! A channel named in a step is not used in the first round.

use std::time::Duration;

use serde::Deserialize;

use crate::domain::ChannelId;

/// One step as written: `{ after = "10m", channel = "sms" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub after: String,
    pub channel: String,
}

/// `[escalation]` in the config or in a template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    pub steps: Vec<RawStep>,
}

/// One step: after `after` from the alert's creation, `channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub after: Duration,
    pub channel: ChannelId,
}

impl RawEscalation {
    /// The steps, checked: durations, channel names, one step per channel
    /// (a delivery is unique per channel and address), never the banner
    /// (it has no recipient to acknowledge). With `configured`, a channel
    /// not configured is an error too.
    pub fn parse(&self) -> Result<Vec<Step>, String> {
        let mut steps: Vec<Step> = Vec::new();
        for (i, raw) in self.steps.iter().enumerate() {
            let n = i + 1;
            let after = humantime::parse_duration(raw.after.trim())
                .map_err(|e| format!("step {n}: after `{}` is not a duration ({e})", raw.after))?;
            if after.is_zero() {
                return Err(format!(
                    "step {n}: after must be more than 0 (the first round is the alert itself)"
                ));
            }
            let channel: ChannelId = raw.channel.parse().map_err(|m| format!("step {n}: {m}"))?;
            if channel == ChannelId::Banner {
                return Err(format!(
                    "step {n}: the banner cannot be an escalation step (nobody acknowledges it)"
                ));
            }
            if steps.iter().any(|s| s.channel == channel) {
                return Err(format!(
                    "step {n}: channel {channel} is already a step (one step per channel)"
                ));
            }
            steps.push(Step { after, channel });
        }
        steps.sort_by_key(|s| s.after);
        Ok(steps)
    }

    pub fn resolve(&self, configured: &[ChannelId]) -> Result<Vec<Step>, String> {
        let steps = self.parse()?;
        if let Some(s) = steps.iter().find(|s| !configured.contains(&s.channel)) {
            return Err(format!(
                "channel {} is not configured ([channels.{}] is missing)",
                s.channel, s.channel
            ));
        }
        Ok(steps)
    }
}

/// `10m` for a step's delay.
pub fn describe(after: Duration) -> String {
    humantime::format_duration(after).to_string()
}

/// The steps of a new message: the template's, else the config's; none
/// for an Update or a Cancel (they go to the original's deliveries on every
/// channel at once). A step whose channel is not configured, or that the
/// template has no text for, is left out (with a note for `preview` and
/// the officer). `--channel` restricts the first round only, so naming a
/// step's channel there is an error: it would not be sent in that round.
pub fn choose(
    config: &crate::config::Config,
    template: &crate::template::Template,
    msg_type: crate::domain::MsgType,
    requested: &[ChannelId],
    rendered: &crate::template::Rendered,
) -> Result<(Vec<Step>, Vec<String>), crate::error::Error> {
    if msg_type != crate::domain::MsgType::Alert {
        return Ok((Vec::new(), Vec::new()));
    }
    let configured = config.channels.configured();
    let mut notes = Vec::new();
    let mut steps = Vec::new();
    let from_template = template.escalation.is_some();
    for step in template.escalation.as_ref().unwrap_or(&config.escalation) {
        if !configured.contains(&step.channel) {
            notes.push(format!(
                "{}: escalation step after {} left out: the channel is not configured",
                step.channel,
                describe(step.after)
            ));
        } else if !rendered.channels.contains_key(&step.channel) {
            notes.push(format!(
                "{}: escalation step after {} left out: template `{}` has no text for it",
                step.channel,
                describe(step.after),
                template.id
            ));
        } else {
            steps.push(*step);
        }
    }
    if let Some(step) = steps.iter().find(|s| requested.contains(&s.channel)) {
        return Err(crate::error::Error::Input(format!(
            "--channel {}: {} is an escalation step (after {}, {}) and is not used in the first round; leave it out of --channel",
            step.channel,
            step.channel,
            describe(step.after),
            if from_template {
                format!("template `{}`", template.id)
            } else {
                "[escalation] in the config".to_owned()
            }
        )));
    }
    Ok((steps, notes))
}

/// The steps' channels as the plan holds them: the contacts of the
/// audience with an address on a step's channel (the same audience as the
/// first round) are planned with the alert, in the same registry pass and
/// its chunks, held until `after` from `created_at`.
pub fn holds(p: &crate::alert::Prepared, created_at_ms: i64) -> Vec<crate::ledger::Hold> {
    p.escalation
        .iter()
        .enumerate()
        .map(|(i, step)| crate::ledger::Hold {
            channel: step.channel,
            step: i as u32 + 1,
            until_ms: created_at_ms + step.after.as_millis() as i64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(steps: &[(&str, &str)]) -> Result<Vec<Step>, String> {
        RawEscalation {
            steps: steps
                .iter()
                .map(|(after, channel)| RawStep {
                    after: after.to_string(),
                    channel: channel.to_string(),
                })
                .collect(),
        }
        .parse()
    }

    #[test]
    fn steps_are_sorted_and_checked() {
        let steps = parse(&[("20m", "voice"), ("10m", "sms")]).expect("steps");
        assert_eq!(steps[0].channel, ChannelId::Sms);
        assert_eq!(steps[1].after, Duration::from_secs(1200));
        assert!(
            parse(&[("10m", "sms"), ("20m", "sms")])
                .unwrap_err()
                .contains("already a step")
        );
        assert!(parse(&[("10m", "banner")]).unwrap_err().contains("banner"));
        assert!(parse(&[("0s", "sms")]).unwrap_err().contains("more than 0"));
        assert!(
            parse(&[("soon", "sms")])
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(
            parse(&[("1m", "fax")])
                .unwrap_err()
                .contains("unknown channel")
        );
    }
}
