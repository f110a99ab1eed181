//! Who receives an alert: `--zone`, `--group`, `--all`, or the drill
//! audience entries (`group:X`, `zone:Y`, `all`).

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::domain::ZoneId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "id")]
pub enum Selector {
    All,
    Zone(ZoneId),
    Group(String),
}

impl Selector {
    /// Parses `all`, `zone:ID` or `group:NAME`.
    pub fn parse(entry: &str, config: &Config) -> Result<Self, String> {
        let entry = entry.trim();
        if entry == "all" {
            return Ok(Self::All);
        }
        match entry.split_once(':') {
            Some(("zone", id)) => config.zone(id).map(Self::Zone),
            Some(("group", name)) if !name.trim().is_empty() => {
                Ok(Self::Group(name.trim().to_owned()))
            }
            _ => Err(format!(
                "`{entry}` is not an audience (expected all, zone:ID or group:NAME)"
            )),
        }
    }
}

/// The resolved audience of one alert: a recipient is in it when any
/// selector matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    pub selectors: Vec<Selector>,
}

impl Audience {
    pub fn matches(&self, zones: &[ZoneId], groups: &[String]) -> bool {
        self.selectors.iter().any(|s| match s {
            Selector::All => true,
            Selector::Zone(z) => zones.contains(z),
            Selector::Group(g) => groups.contains(g),
        })
    }

    pub fn describe(&self) -> String {
        self.selectors
            .iter()
            .map(|s| match s {
                Selector::All => "all".to_owned(),
                Selector::Zone(z) => format!("zone:{z}"),
                Selector::Group(g) => format!("group:{g}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(id: &str) -> ZoneId {
        ZoneId::declared(id)
    }

    #[test]
    fn a_recipient_matches_when_any_selector_does() {
        let a = Audience {
            selectors: vec![
                Selector::Zone(zone("centro")),
                Selector::Group("scuole".into()),
            ],
        };
        assert!(a.matches(&[zone("centro")], &[]));
        assert!(a.matches(&[zone("fibbiana")], &["scuole".into()]));
        assert!(!a.matches(&[zone("fibbiana")], &["personale".into()]));
        assert!(!a.matches(&[], &[]));
    }

    #[test]
    fn the_stored_form_reads_back_as_the_same_audience() {
        let a = Audience {
            selectors: vec![
                Selector::All,
                Selector::Zone(zone("centro")),
                Selector::Group("scuole".into()),
            ],
        };
        let stored = serde_json::to_value(&a).expect("json");
        assert_eq!(
            stored,
            serde_json::json!({ "selectors": [
                { "kind": "all" },
                { "kind": "zone", "id": "centro" },
                { "kind": "group", "id": "scuole" }
            ] })
        );
        assert_eq!(serde_json::from_value::<Audience>(stored).expect("read"), a);
    }

    #[test]
    fn all_matches_everyone_even_without_zones() {
        let a = Audience {
            selectors: vec![Selector::All],
        };
        assert!(a.matches(&[], &[]));
    }
}
