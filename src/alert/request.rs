//! Raw inputs become a validated alert in one step (template loaded,
//! variables checked, audience resolved, channels chosen, texts rendered
//! within every channel's limits). All input errors surface here, before
//! anything is written or sent.

use std::collections::BTreeMap;

use chrono::Utc;

use crate::audience::{Audience, Selector};
use crate::config::Config;
use crate::domain::{CapStatus, ChannelId, MsgType};
use crate::error::Error;
use crate::template::{RenderOptions, Rendered, Template, gsm};

/// What `send` was asked to do, before validation.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub template: String,
    pub vars: Vec<(String, String)>,
    pub zones: Vec<String>,
    pub groups: Vec<String>,
    pub all: bool,
    pub channels: Vec<String>,
    pub drill: bool,
    pub test: bool,
    pub expires: Option<String>,
    pub key: Option<String>,
    pub dry_run: bool,
    pub skip_invalid: bool,
}

impl SendRequest {
    pub fn status(&self) -> CapStatus {
        if self.drill {
            CapStatus::Exercise
        } else if self.test {
            CapStatus::Test
        } else {
            CapStatus::Actual
        }
    }
}

/// An alert after every input was checked.
pub struct Prepared {
    pub template: Template,
    pub vars: BTreeMap<String, String>,
    pub status: CapStatus,
    pub msg_type: MsgType,
    pub references: Vec<String>,
    pub audience: Audience,
    pub channels: Vec<ChannelId>,
    pub rendered: Rendered,
    pub expires_at: Option<chrono::DateTime<Utc>>,
    pub skipped_channels: Vec<String>,
    /// Escalation steps (SPEC §14): their channels are not in `channels`
    /// (the first round); their deliveries are planned held.
    pub escalation: Vec<super::escalation::Step>,
}

impl Prepared {
    /// The first round's channels and the escalation steps' channels.
    pub fn all_channels(&self) -> Vec<ChannelId> {
        let mut all = self.channels.clone();
        all.extend(self.escalation.iter().map(|s| s.channel));
        all
    }
}

/// `[drill] audience` as selectors.
pub fn drill_audience(config: &Config) -> Result<Audience, Error> {
    let selectors = config
        .drill
        .audience
        .iter()
        .map(|e| Selector::parse(e, config).map_err(Error::Input))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Audience { selectors })
}

pub fn resolve_audience(
    config: &Config,
    zones: &[String],
    groups: &[String],
    all: bool,
    drill: bool,
) -> Result<Audience, Error> {
    let mut selectors = Vec::new();
    if all {
        selectors.push(Selector::All);
    }
    for z in zones {
        selectors.push(Selector::Zone(config.zone(z).map_err(Error::Input)?));
    }
    for g in groups {
        selectors.push(Selector::Group(g.trim().to_owned()));
    }
    if selectors.is_empty() && drill {
        selectors = drill_audience(config)?.selectors;
        if selectors.is_empty() {
            return Err(Error::Input(
                "--drill without an audience, and [drill] audience is empty in the config".into(),
            ));
        }
    }
    if selectors.is_empty() {
        return Err(Error::Input(
            "no audience: give --zone ZONE, --group GROUP or --all (drills default to [drill] audience)".into(),
        ));
    }
    Ok(Audience { selectors })
}

/// The marker every message of this status carries (SPEC §11).
pub fn marker(config: &Config, status: CapStatus) -> Option<&str> {
    match status {
        CapStatus::Actual => None,
        CapStatus::Exercise => Some(config.drill.prefix.as_str()),
        CapStatus::Test => Some(config.test_prefix.as_str()),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn prepare(
    config: &Config,
    template: Template,
    given_vars: &[(String, String)],
    status: CapStatus,
    msg_type: MsgType,
    references: Vec<String>,
    audience: Audience,
    requested: &[ChannelId],
    expires: Option<&str>,
) -> Result<Prepared, Error> {
    let vars = template.resolve_vars(given_vars)?;
    let rendered = template.render(
        &vars,
        &RenderOptions {
            default_language: &config.general.default_language,
            prefix: marker(config, status),
        },
    )?;
    let configured = config.channels.configured();
    for c in requested {
        if !configured.contains(c) {
            return Err(Error::Input(format!(
                "--channel {c}: the channel is not configured ([channels.{c}] is missing in {})",
                config.path.display()
            )));
        }
    }
    let (escalation, mut skipped_channels) =
        super::escalation::choose(config, &template, msg_type, requested, &rendered)?;
    let wanted: Vec<ChannelId> = if requested.is_empty() {
        configured
    } else {
        requested.to_vec()
    };
    // A channel named in a step is not used in the first round.
    let wanted: Vec<ChannelId> = wanted
        .into_iter()
        .filter(|c| !escalation.iter().any(|s| s.channel == *c))
        .collect();
    let mut channels = Vec::new();
    for c in wanted {
        if c.is_social() && status != CapStatus::Actual {
            // SPEC §11: Exercise and Test never reach a social account.
            skipped_channels.push(format!(
                "{c}: {} messages are never posted on social accounts",
                status.as_str()
            ));
        } else if rendered.channels.contains_key(&c) {
            channels.push(c);
        } else {
            skipped_channels.push(format!(
                "{c}: template `{}` has no text for it",
                template.id
            ));
        }
    }
    if channels.is_empty() {
        return Err(Error::Input(format!(
            "nothing to send: template `{}` has no text for the selected channels ({})",
            template.id,
            skipped_channels.join("; ")
        )));
    }
    // A social text never blocks a channel it is not for: only the social
    // channels this alert posts on are measured.
    let problems = channel_problems(config, &rendered, |c| {
        !c.is_social() || channels.contains(&c)
    });
    if !problems.is_empty() {
        return Err(Error::Input(format!(
            "template `{}` renders texts that cannot be sent:\n  {}",
            template.id,
            problems.join("\n  ")
        )));
    }
    let validity = match expires {
        Some(e) => Some(
            humantime::parse_duration(e)
                .map_err(|err| Error::Input(format!("--expires `{e}`: {err}")))?,
        ),
        None => template.expires_after,
    };
    let expires_at = validity
        .map(|d| chrono::Duration::from_std(d).map(|d| Utc::now() + d))
        .transpose()
        .map_err(|e| Error::Input(format!("--expires: {e}")))?;
    Ok(Prepared {
        template,
        vars,
        status,
        msg_type,
        references,
        audience,
        channels,
        rendered,
        expires_at,
        skipped_channels,
        escalation,
    })
}

/// Channel limits a rendered text must respect: SMS segments, Telegram's
/// 4096 characters, each social network's length, no empty message. Social
/// texts are measured only for the networks the config has an account on.
pub fn limit_problems(config: &Config, rendered: &Rendered) -> Vec<String> {
    channel_problems(config, rendered, |c| {
        !c.is_social() || config.channels.social_transport(c).is_some()
    })
}

/// [`limit_problems`] for the channels `wanted` says yes to.
fn channel_problems(
    config: &Config,
    rendered: &Rendered,
    wanted: impl Fn(ChannelId) -> bool,
) -> Vec<String> {
    let max_segments = config.channels.sms.as_ref().map_or(3, |s| s.max_segments);
    let link_base = crate::channel::social::link_base(config);
    let mut problems = Vec::new();
    for (channel, by_lang) in rendered.channels.iter().filter(|(c, _)| wanted(**c)) {
        for (lang, text) in by_lang {
            if text.text.trim().is_empty() {
                problems.push(format!("[{lang}] {channel}: the text is empty"));
                continue;
            }
            match channel {
                ChannelId::Sms => {
                    let a = gsm::analyze(&text.text);
                    if a.segments > max_segments {
                        problems.push(format!(
                            "[{lang}] sms: {} segments ({} {}, {} units) exceed max_segments = {max_segments}{}",
                            a.segments,
                            a.chars,
                            if a.chars == 1 { "character" } else { "characters" },
                            a.units,
                            if a.ucs2_forcing.is_empty() {
                                String::new()
                            } else {
                                format!("; UCS-2 forced by {}", a.ucs2_forcing.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(" "))
                            }
                        ));
                    }
                }
                ChannelId::Telegram => {
                    let n = text.text.chars().count();
                    if n > 4096 {
                        problems.push(format!(
                            "[{lang}] telegram: {n} characters exceed Telegram's 4096"
                        ));
                    }
                }
                ChannelId::Facebook | ChannelId::Mastodon | ChannelId::Bluesky => {
                    if let Some(p) = crate::channel::social::limits::check_text(
                        *channel,
                        &text.text,
                        link_base.as_deref(),
                    ) {
                        problems.push(format!("[{lang}] {channel}: {p}"));
                    }
                }
                ChannelId::Voice => {
                    let spoken = crate::channel::voice::speech::duration(&text.text);
                    if spoken > crate::channel::voice::speech::MAX_TEXT {
                        problems.push(format!(
                            "[{lang}] voice: about {} s to speak ({} words at {} words per minute) exceed {} s",
                            spoken.as_secs(),
                            text.text.split_whitespace().count(),
                            crate::channel::voice::speech::WORDS_PER_MINUTE,
                            crate::channel::voice::speech::MAX_TEXT.as_secs()
                        ));
                    }
                }
                ChannelId::Email | ChannelId::Banner => {}
            }
        }
    }
    problems
}

/// The channel ids a request names, checked.
pub fn parse_channels(names: &[String]) -> Result<Vec<ChannelId>, Error> {
    names
        .iter()
        .map(|c| c.parse::<ChannelId>().map_err(Error::Input))
        .collect()
}
