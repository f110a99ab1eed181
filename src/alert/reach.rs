//! Who an alert would reach, counted before anything is written: per
//! channel, and how many of them are outside `[drill] audience` (the count
//! that makes confirmation necessary, SPEC §11).

use std::collections::{BTreeMap, HashSet};

use super::Prepared;
use crate::audience::Audience;
use crate::config::Config;
use crate::contacts;
use crate::domain::{CapStatus, ChannelId};
use crate::error::Error;
use crate::ledger::Ledger;
use crate::template::gsm;

/// Recipient counts of one alert.
#[derive(Debug, Default)]
pub struct Reach {
    /// Distinct addresses per channel, as the plan will count them.
    pub per_channel: BTreeMap<ChannelId, u64>,
    /// Of which bot subscribers (Telegram).
    pub subscribers: u64,
    /// Deliveries to recipients outside the drill audience (the public
    /// banner and a broadcast channel count as outside).
    pub outside_drill: u64,
    pub problems: Vec<contacts::RowError>,
}

impl Reach {
    pub fn from_counts(per_channel: BTreeMap<ChannelId, u64>, outside_drill: u64) -> Self {
        Self {
            per_channel,
            outside_drill,
            ..Self::default()
        }
    }

    /// Counts what the plan of `p` would hold. Invalid contact rows stop it
    /// (exit 2) unless `skip_invalid`.
    pub fn count(
        config: &Config,
        p: &Prepared,
        drill: &Audience,
        skip_invalid: bool,
    ) -> Result<Self, Error> {
        let mut reach = Self::default();
        let mut seen: HashSet<(ChannelId, u64)> = HashSet::new();
        // Escalation steps' channels too: their deliveries are planned now.
        let channels = p.all_channels();
        contacts::scan::<()>(config, |row| {
            match row {
                Ok(c) if p.audience.matches(&c.zones, &c.groups) => {
                    let outside = !drill.matches(&c.zones, &c.groups);
                    for ch in &channels {
                        // A 64-bit hash per address keeps this exact and
                        // small (8 bytes a recipient) however long the lists.
                        if let Some(address) = c.address(*ch)
                            && seen.insert((*ch, hash(address)))
                        {
                            *reach.per_channel.entry(*ch).or_default() += 1;
                            reach.outside_drill += u64::from(outside);
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => reach.problems.push(e),
            }
            Ok(())
        })
        .ok();
        if !reach.problems.is_empty() && !skip_invalid {
            return Err(contact_problems(&reach.problems));
        }
        if p.channels.contains(&ChannelId::Telegram) {
            if let Some(ledger) = Ledger::open_existing_read_only(&config.general.database)? {
                for s in ledger.active_subscribers()? {
                    if p.audience.matches(&s.zones, &[])
                        && seen.insert((ChannelId::Telegram, hash(&s.chat)))
                    {
                        reach.subscribers += 1;
                        *reach.per_channel.entry(ChannelId::Telegram).or_default() += 1;
                        reach.outside_drill += u64::from(!drill.matches(&s.zones, &[]));
                    }
                }
            }
            let broadcast = config
                .channels
                .telegram
                .as_ref()
                .and_then(|t| t.broadcast_chat.as_deref());
            if broadcast.is_some() && p.status == CapStatus::Actual {
                *reach.per_channel.entry(ChannelId::Telegram).or_default() += 1;
                reach.outside_drill += 1;
            }
        }
        for social in ChannelId::SOCIAL {
            if p.channels.contains(&social) && p.status == CapStatus::Actual {
                reach.per_channel.insert(social, 1);
                reach.outside_drill += 1;
            }
        }
        if p.channels.contains(&ChannelId::Banner) {
            reach.per_channel.insert(ChannelId::Banner, 1);
            reach.outside_drill += u64::from(p.status == CapStatus::Actual);
        }
        Ok(reach)
    }

    /// One line per channel for the confirmation and the dry run.
    pub fn lines(&self, p: &Prepared) -> Vec<String> {
        let mut lines = Vec::new();
        for ch in &p.channels {
            let n = self.per_channel.get(ch).copied().unwrap_or(0);
            let extra = match ch {
                ChannelId::Telegram if self.subscribers > 0 => {
                    format!(" (incl. {} bot subscribers)", self.subscribers)
                }
                ChannelId::Banner if p.status == CapStatus::Actual => {
                    " (public banner + CAP feed)".into()
                }
                ChannelId::Banner => " (drill banner)".into(),
                ChannelId::Facebook | ChannelId::Mastodon | ChannelId::Bluesky => {
                    " (public post)".into()
                }
                ChannelId::Sms => {
                    let segments = p
                        .rendered
                        .channels
                        .get(ch)
                        .map(|t| {
                            t.values()
                                .map(|t| gsm::analyze(&t.text).segments)
                                .max()
                                .unwrap_or(0)
                        })
                        .unwrap_or(0) as u64;
                    format!(" × {segments} segment(s) = up to {} SMS", n * segments)
                }
                _ => String::new(),
            };
            lines.push(format!("  {:<9} {n} recipient(s){extra}", ch.as_str()));
        }
        lines
    }
}

fn hash(s: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(s)
}

/// Exit 2 listing the invalid contact rows (`file:line: reason`).
pub fn contact_problems<T: ToString>(problems: &[T]) -> Error {
    let shown: Vec<String> = problems.iter().take(50).map(ToString::to_string).collect();
    let more = problems.len().saturating_sub(shown.len());
    Error::Input(format!(
        "contact files have {} problem(s); nothing was sent (fix them, or pass --skip-invalid to leave those rows out):\n  {}{}",
        problems.len(),
        shown.join("\n  "),
        if more > 0 {
            format!("\n  … and {more} more (allerta contacts check lists all)")
        } else {
            String::new()
        }
    ))
}
