//! `contacts coverage` (SPEC §12): per zone, how many recipients each
//! configured channel reaches and who no channel reaches — the officer's
//! list of people to reach another way (a phone call, a visit).
//!
//! Recipients are the contacts and the active bot subscribers. A subscriber
//! whose chat is also a contact's `telegram_chat_id` is one person, counted
//! once (as the contact, reached on Telegram). The banner reaches no one in
//! particular, so only the channels with per-person addresses count.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use serde::Serialize;

use super::{Contact, RowError};
use crate::config::Config;
use crate::domain::{ChannelId, ZoneId};

/// An active bot subscriber, as the ledger keeps them.
pub struct SubscriberRef {
    pub chat_id: String,
    pub zones: Vec<String>,
}

/// Someone no configured channel reaches.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Unreached {
    pub id: String,
    pub name: String,
    pub file: PathBuf,
    pub line: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ZoneCoverage {
    pub total: u64,
    pub channels: BTreeMap<ChannelId, u64>,
    pub none: u64,
    #[serde(skip)]
    pub unreached: Vec<Unreached>,
}

#[derive(Debug, Default, Serialize)]
pub struct Coverage {
    pub zones: BTreeMap<ZoneId, ZoneCoverage>,
    /// Recipients in no zone (reached only by `--group` or `--all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_zone: Option<ZoneCoverage>,
    /// Rows that could not be read: until fixed, nobody reaches them.
    pub problems: Vec<RowError>,
}

/// The channels that reach people one by one, among the configured ones.
pub fn personal_channels(config: &Config) -> Vec<ChannelId> {
    config
        .channels
        .configured()
        .into_iter()
        .filter(|c| *c != ChannelId::Banner)
        .collect()
}

/// Coverage of every declared zone (or only `only`), from the contact files
/// and the given active subscribers.
pub fn coverage(config: &Config, subscribers: &[SubscriberRef], only: Option<&ZoneId>) -> Coverage {
    let channels = personal_channels(config);
    let mut cov = Coverage::default();
    for zone in config.zones.keys() {
        if only.is_none_or(|o| o == zone) {
            cov.zones.insert(zone.clone(), empty(&channels));
        }
    }
    let subscribed: HashSet<&str> = subscribers.iter().map(|s| s.chat_id.as_str()).collect();
    let mut contact_chats = HashSet::new();
    let _ = super::scan::<()>(config, |row| {
        match row {
            Ok(c) => {
                if let Some(t) = &c.telegram {
                    contact_chats.insert(t.as_str().to_owned());
                }
                let reached: Vec<ChannelId> = channels
                    .iter()
                    .copied()
                    .filter(|ch| reaches(&c, *ch, &subscribed))
                    .collect();
                let who = || Unreached {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    file: c.file.clone(),
                    line: c.line,
                };
                for cell in cells(&mut cov, &c.zones, only, &channels) {
                    count(cell, &reached, who);
                }
            }
            Err(e) => cov.problems.push(e),
        }
        Ok(())
    });
    for s in subscribers {
        if contact_chats.contains(&s.chat_id) {
            continue;
        }
        let zones: Vec<ZoneId> = s
            .zones
            .iter()
            .map(|z| ZoneId::declared(z))
            .filter(|z| config.zones.contains_key(z))
            .collect();
        let reached: Vec<ChannelId> = channels
            .iter()
            .copied()
            .filter(|ch| *ch == ChannelId::Telegram)
            .collect();
        let who = || Unreached {
            id: format!("subscriber:{}", s.chat_id),
            name: "(Telegram subscriber)".into(),
            file: PathBuf::new(),
            line: 0,
        };
        for cell in cells(&mut cov, &zones, only, &channels) {
            count(cell, &reached, who);
        }
    }
    cov
}

fn empty(channels: &[ChannelId]) -> ZoneCoverage {
    ZoneCoverage {
        channels: channels.iter().map(|c| (*c, 0)).collect(),
        ..ZoneCoverage::default()
    }
}

fn reaches(c: &Contact, ch: ChannelId, subscribed: &HashSet<&str>) -> bool {
    c.address(ch).is_some()
        || (ch == ChannelId::Telegram
            && c.telegram
                .as_ref()
                .is_some_and(|t| subscribed.contains(t.as_str())))
}

/// The coverage cells a recipient in `zones` counts in.
fn cells<'c>(
    cov: &'c mut Coverage,
    zones: &[ZoneId],
    only: Option<&ZoneId>,
    channels: &[ChannelId],
) -> Vec<&'c mut ZoneCoverage> {
    if zones.is_empty() {
        if only.is_some() {
            return Vec::new();
        }
        return vec![cov.no_zone.get_or_insert_with(|| empty(channels))];
    }
    cov.zones
        .iter_mut()
        .filter(|(z, _)| zones.contains(z))
        .map(|(_, c)| c)
        .collect()
}

fn count(cell: &mut ZoneCoverage, reached: &[ChannelId], who: impl Fn() -> Unreached) {
    cell.total += 1;
    for ch in reached {
        *cell.channels.entry(*ch).or_default() += 1;
    }
    if reached.is_empty() {
        cell.none += 1;
        cell.unreached.push(who());
    }
}
