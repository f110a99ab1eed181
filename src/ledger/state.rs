//! A delivery's state (SPEC §7): `pending → sending → sent → delivered`, or
//! `failed`, or `skipped`. Stored as its word; read back through `FromStr`,
//! so an unknown word is a corrupt ledger, never a silent default.

use std::fmt;
use std::str::FromStr;

use super::LedgerError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryState {
    Pending,
    Sending,
    Sent,
    Delivered,
    Failed,
    Skipped,
}

impl DeliveryState {
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Failed,
        Self::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// `('pending', 'sending')`: a list for SQL's `IN`, from the typed
    /// words only (nothing typed by a user goes into it).
    pub fn sql_list(states: &[Self]) -> String {
        let words: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        format!("({})", words.join(", "))
    }

    /// Not final yet: the engine still has work to do.
    pub fn is_unsettled(self) -> bool {
        matches!(self, Self::Pending | Self::Sending)
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As its word, the same as in the database (`"sent"`).
impl serde::Serialize for DeliveryState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl FromStr for DeliveryState {
    type Err = LedgerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| LedgerError::Corrupt(format!("unknown delivery state `{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_and_unknown_words_are_corrupt() {
        for s in DeliveryState::ALL {
            assert_eq!(s.as_str().parse::<DeliveryState>().expect("parse"), s);
        }
        assert!("delivering".parse::<DeliveryState>().is_err());
        assert!(DeliveryState::Sending.is_unsettled());
        assert!(!DeliveryState::Sent.is_unsettled());
    }
}
