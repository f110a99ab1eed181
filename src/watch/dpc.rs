//! The DPC national criticality bulletin (GeoJSON FeatureCollection, one
//! feature per alert zone): the zones that list the comune, and their level
//! for each risk. Geometry is skipped while parsing, never kept.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;

use super::level::Level;
use super::rules::normalize;

/// The bulletin's property for each risk, as published.
pub const RISKS: [(&str, &str); 3] = [
    ("idraulico", "Per rischio idraulico"),
    ("idrogeologico", "Per rischio idrogeologico"),
    ("temporali", "Per rischio temporali"),
];

#[derive(Deserialize)]
struct Collection {
    #[serde(rename = "type")]
    kind: String,
    features: Vec<Feature>,
}

/// `geometry` (most of the 5.5 MB) is not a field here: serde skips it
/// without building it.
#[derive(Deserialize)]
struct Feature {
    properties: BTreeMap<String, serde_json::Value>,
}

/// What the bulletin says about one comune.
#[derive(Debug, PartialEq, Eq)]
pub struct Reading {
    /// `"Nome zona"` of every zone listing the comune.
    pub zones: Vec<String>,
    /// Risk → level, only the risks with an alert (the highest over the zones).
    pub levels: BTreeMap<String, Level>,
}

pub fn read(bytes: &[u8], comune: &str) -> Result<Reading, String> {
    let collection: Collection = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a DPC bulletin (GeoJSON FeatureCollection): {e}"))?;
    if collection.kind != "FeatureCollection" {
        return Err(format!(
            "not a DPC bulletin: type is `{}`, not FeatureCollection",
            collection.kind
        ));
    }
    let wanted = normalize(comune);
    let mut reading = Reading {
        zones: Vec::new(),
        levels: BTreeMap::new(),
    };
    for (i, feature) in collection.features.iter().enumerate() {
        let p = &feature.properties;
        let zone = p
            .get("Nome zona")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned();
        let Some(comuni) = p.get("Comuni").and_then(|v| v.as_array()) else {
            return Err(format!(
                "feature {i} (zone `{zone}`) has no \"Comuni\" list: the bulletin's format changed"
            ));
        };
        let listed = comuni
            .iter()
            .filter_map(|c| c.as_str())
            .any(|c| normalize(c) == wanted);
        if !listed {
            continue;
        }
        for (risk, property) in RISKS {
            let value = p.get(property).and_then(|v| v.as_str()).ok_or_else(|| {
                format!("zone `{zone}` has no \"{property}\": the bulletin's format changed")
            })?;
            let level = Level::from_dpc(value).map_err(|e| format!("zone `{zone}`: {e}"))?;
            if let Some(level) = level {
                let entry = reading.levels.entry(risk.to_owned()).or_insert(level);
                *entry = (*entry).max(level);
            }
        }
        if !reading.zones.contains(&zone) {
            reading.zones.push(zone);
        }
    }
    if reading.zones.is_empty() {
        return Err(format!(
            "no zone of the bulletin lists the comune `{comune}` (check `comune` against the bulletin's \"Comuni\")"
        ));
    }
    Ok(reading)
}

/// The day a bulletin file is for: its name carries the issue date and
/// `today` or `tomorrow` (`20261201_1530_tomorrow.json` is for 2 December);
/// otherwise `today` (the local date), or the day after for a name with
/// `tomorrow` or `domani` (a local copy such as `bollettino-domani.json`).
pub fn day_of(url: &url::Url, today: NaiveDate) -> NaiveDate {
    let name = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("")
        .to_lowercase();
    let tomorrow = name.contains("tomorrow") || name.contains("domani");
    let issued = name
        .get(..8)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        .unwrap_or(today);
    if tomorrow {
        issued.succ_opt().unwrap_or(issued)
    } else {
        issued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BULLETIN: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"Rappresentata nella mappa":"Ordinaria / ALLERTA GIALLA",
        "Per rischio idraulico":"Assenza di fenomeni significativi prevedibili / NESSUNA ALLERTA",
        "Per rischio temporali":"Ordinaria / ALLERTA GIALLA",
        "Per rischio idrogeologico":"Moderata / ALLERTA ARANCIONE",
        "Nome zona":"Bacini Tordino Vomano","Comuni":["Sant'Egidio alla Vibrata","Teramo","Teramo"]},
       "geometry":{"type":"Polygon","coordinates":[[[13.7,42.6],[13.8,42.6],[13.8,42.7],[13.7,42.6]]]}}]}"#;

    #[test]
    fn finds_the_comune_and_its_levels() {
        let r = read(BULLETIN.as_bytes(), "SANT EGIDIO ALLA VIBRATA").unwrap();
        assert_eq!(r.zones, vec!["Bacini Tordino Vomano".to_owned()]);
        assert_eq!(r.levels.get("idrogeologico"), Some(&Level::Arancione));
        assert_eq!(r.levels.get("temporali"), Some(&Level::Giallo));
        assert_eq!(r.levels.get("idraulico"), None);
    }

    #[test]
    fn an_unlisted_comune_or_a_changed_format_is_an_error_not_calm() {
        assert!(
            read(BULLETIN.as_bytes(), "Montelupo Fiorentino")
                .unwrap_err()
                .contains("Montelupo")
        );
        let changed = BULLETIN.replace("Per rischio idraulico", "Rischio idraulico");
        assert!(
            read(changed.as_bytes(), "Teramo")
                .unwrap_err()
                .contains("format changed")
        );
        assert!(read(b"<html>", "Teramo").is_err());
    }

    #[test]
    fn the_day_comes_from_the_file_name() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(
            day_of(
                &url("https://x/files/geojson/20260706_1459_today.json"),
                today
            ),
            NaiveDate::from_ymd_opt(2026, 7, 6).unwrap()
        );
        assert_eq!(
            day_of(
                &url("https://x/files/geojson/20261231_1459_tomorrow.json"),
                today
            ),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
        assert_eq!(day_of(&url("file:///srv/bollettino.json"), today), today);
        assert_eq!(
            day_of(&url("file:///srv/dpc/domani.json"), today),
            NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
        );
    }
}
