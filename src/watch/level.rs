//! The three alert levels of the Italian system (codice giallo, arancione,
//! rosso) and how each source spells them.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Giallo,
    Arancione,
    Rosso,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Giallo => "giallo",
            Self::Arancione => "arancione",
            Self::Rosso => "rosso",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "giallo" => Some(Self::Giallo),
            "arancione" => Some(Self::Arancione),
            "rosso" => Some(Self::Rosso),
            _ => None,
        }
    }

    /// A DPC value, `"<criticità> / ALLERTA GIALLA|ARANCIONE|ROSSA"` or
    /// `"… / NESSUNA ALLERTA"`: `Ok(None)` for no alert, `Err` for a value
    /// the bulletin has never used (a format change must not read as calm).
    pub fn from_dpc(value: &str) -> Result<Option<Self>, String> {
        let alert = value
            .rsplit_once('/')
            .map_or(value, |(_, a)| a)
            .trim()
            .to_uppercase();
        match alert.as_str() {
            "NESSUNA ALLERTA" => Ok(None),
            "ALLERTA GIALLA" => Ok(Some(Self::Giallo)),
            "ALLERTA ARANCIONE" => Ok(Some(Self::Arancione)),
            "ALLERTA ROSSA" => Ok(Some(Self::Rosso)),
            _ => Err(format!("unknown alert value `{value}`")),
        }
    }

    /// CAP `<severity>`: Moderate, Severe, Extreme map to the three
    /// levels; Minor and Unknown are no alert.
    pub fn from_cap_severity(severity: &str) -> Option<Self> {
        match severity.trim() {
            "Moderate" => Some(Self::Giallo),
            "Severe" => Some(Self::Arancione),
            "Extreme" => Some(Self::Rosso),
            _ => None,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpc_values_as_published() {
        assert_eq!(
            Level::from_dpc("Assenza di fenomeni significativi prevedibili / NESSUNA ALLERTA"),
            Ok(None)
        );
        assert_eq!(
            Level::from_dpc("Ordinaria / ALLERTA GIALLA"),
            Ok(Some(Level::Giallo))
        );
        assert_eq!(
            Level::from_dpc("Moderata / ALLERTA ARANCIONE"),
            Ok(Some(Level::Arancione))
        );
        assert_eq!(
            Level::from_dpc("Elevata / ALLERTA ROSSA"),
            Ok(Some(Level::Rosso))
        );
        assert!(Level::from_dpc("Ordinaria / ALLERTA VIOLA").is_err());
        assert!(Level::from_dpc("").is_err());
    }

    #[test]
    fn cap_severity() {
        assert_eq!(Level::from_cap_severity("Moderate"), Some(Level::Giallo));
        assert_eq!(Level::from_cap_severity("Severe"), Some(Level::Arancione));
        assert_eq!(Level::from_cap_severity("Extreme"), Some(Level::Rosso));
        assert_eq!(Level::from_cap_severity("Minor"), None);
        assert!(Level::Giallo < Level::Rosso);
    }
}
