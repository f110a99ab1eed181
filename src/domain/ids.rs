//! Identifiers and closed vocabularies shared by config, ledger and CLI.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The channels. The same word is used in config sections, `--channel`,
/// JSON keys and outbox file names. Voice calls (SPEC §14) and the social
/// networks (SPEC §15: one public post per alert per account) come last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelId {
    Telegram,
    Sms,
    Email,
    Banner,
    /// Recorded-voice calls (SPEC §14).
    Voice,
    Facebook,
    Mastodon,
    Bluesky,
}

impl ChannelId {
    pub const ALL: [ChannelId; 8] = [
        Self::Telegram,
        Self::Sms,
        Self::Email,
        Self::Banner,
        Self::Voice,
        Self::Facebook,
        Self::Mastodon,
        Self::Bluesky,
    ];

    /// The social networks (SPEC §15): public posts, never for drills or tests.
    pub const SOCIAL: [ChannelId; 3] = [Self::Facebook, Self::Mastodon, Self::Bluesky];

    pub fn is_social(self) -> bool {
        Self::SOCIAL.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Telegram => "telegram",
            Self::Sms => "sms",
            Self::Email => "email",
            Self::Banner => "banner",
            Self::Voice => "voice",
            Self::Facebook => "facebook",
            Self::Mastodon => "mastodon",
            Self::Bluesky => "bluesky",
        }
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown channel `{s}` (expected telegram, sms, email, banner, voice, facebook, mastodon or bluesky)"
                )
            })
    }
}

/// The id of one alert; also its CAP `<identifier>`. Sortable by creation
/// time, unique through a random suffix, and free of the characters CAP
/// forbids (space, comma, `<`, `&`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertId(String);

impl AlertId {
    pub fn generate(now: DateTime<Utc>) -> Self {
        let suffix: u32 = rand::rng().random_range(0..0x10000);
        Self(format!("{}-{suffix:04x}", now.format("%Y%m%dT%H%M%S")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A zone id declared in `[zones.<id>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ZoneId(String);

impl ZoneId {
    /// Only for ids read from the config's own table keys; anything a user
    /// typed goes through `Config::zone`.
    pub fn declared(id: &str) -> Self {
        Self(id.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// CAP `<status>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapStatus {
    Actual,
    Exercise,
    Test,
}

impl CapStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Actual => "Actual",
            Self::Exercise => "Exercise",
            Self::Test => "Test",
        }
    }
}

impl fmt::Display for CapStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CapStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Actual" => Ok(Self::Actual),
            "Exercise" => Ok(Self::Exercise),
            "Test" => Ok(Self::Test),
            other => Err(format!("unknown CAP status `{other}`")),
        }
    }
}

/// CAP `<msgType>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MsgType {
    Alert,
    Update,
    Cancel,
}

impl MsgType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "Alert",
            Self::Update => "Update",
            Self::Cancel => "Cancel",
        }
    }
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MsgType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Alert" => Ok(Self::Alert),
            "Update" => Ok(Self::Update),
            "Cancel" => Ok(Self::Cancel),
            other => Err(format!("unknown CAP msgType `{other}`")),
        }
    }
}
