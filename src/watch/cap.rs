//! CAP 1.2 Atom feeds (MeteoAlarm): the entries whose `areaDesc` contains
//! the configured area, with their level (CAP severity) and their event.
//! Both shapes are read: CAP elements directly in the Atom `<entry>` (the
//! MeteoAlarm Atom feed) and a whole `<alert>` inside the entry's content.
//! The XML is read as a stream of events; nothing but the fields below is
//! kept.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use quick_xml::Reader;
use quick_xml::events::Event;

use super::level::Level;
use super::rules::words;

/// One CAP entry of the feed, as far as drafts need it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Entry {
    pub identifier: String,
    pub areas: Vec<String>,
    pub event: String,
    /// MeteoAlarm's `awareness_type` parameter (full CAP only), e.g. `3; thunderstorm`.
    pub awareness_type: Option<String>,
    pub severity: String,
    pub status: String,
    pub msg_type: String,
    pub onset: Option<String>,
    pub expires: Option<String>,
}

impl Entry {
    pub fn level(&self) -> Option<Level> {
        Level::from_cap_severity(&self.severity)
    }

    /// The words rules are matched against: the event and the awareness type.
    pub fn risk_text(&self) -> String {
        match &self.awareness_type {
            Some(a) => format!("{} {a}", self.event),
            None => self.event.clone(),
        }
    }

    /// Whether this entry is an alert in force: `Actual` (not a test or an
    /// exercise), not a cancellation, not expired.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        let actual = self.status.is_empty() || self.status == "Actual";
        let cancel = self.msg_type.eq_ignore_ascii_case("cancel");
        let expired = self
            .expires
            .as_deref()
            .and_then(parse_time)
            .is_some_and(|t| t < now);
        actual && !cancel && !expired
    }

    /// The local day the entry is for: its onset, or today when it began
    /// earlier (a warning still in force) or has no onset.
    pub fn day(&self, tz: chrono_tz::Tz, today: NaiveDate) -> NaiveDate {
        self.onset
            .as_deref()
            .and_then(parse_time)
            .map(|t| t.with_timezone(&tz).date_naive())
            .map_or(today, |d| d.max(today))
    }

    pub fn covers(&self, area: &str) -> bool {
        let wanted = format!(" {} ", words(area));
        wanted.trim() != ""
            && self
                .areas
                .iter()
                .any(|a| format!(" {} ", words(a)).contains(&wanted))
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::<FixedOffset>::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Every entry of an Atom feed (or a bare CAP `<alert>`).
pub fn entries(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    // Text is trimmed per element at its end, not per text event: an
    // entity splits "Toscana &amp; Umbria" into three events.
    let mut reader = Reader::from_reader(bytes);
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    let mut field: Option<String> = None;
    let mut text = String::new();
    let mut last_value_name = String::new();
    let mut root: Option<String> = None;
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "not a CAP/Atom feed: XML error at byte {}: {e}",
                reader.error_position()
            )
        })?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                if root.is_none() {
                    if name != "feed" && name != "alert" {
                        return Err(format!(
                            "not a CAP/Atom feed: the document is a <{name}>, not an Atom <feed> or a CAP <alert>"
                        ));
                    }
                    root = Some(name.clone());
                    if name == "alert" {
                        current = Some(Entry::default());
                    }
                    continue;
                }
                if name == "entry" {
                    current = Some(Entry::default());
                }
                field = Some(name);
                text.clear();
            }
            Event::Text(t) => {
                text.push_str(&t.xml10_content());
            }
            Event::CData(t) => {
                text.push_str(&t.xml10_content());
            }
            Event::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else {
                    let name = r.into_inner();
                    match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => text.push_str(s),
                        None => return Err(format!("unknown XML entity `&{name};`")),
                    }
                }
            }
            Event::End(e) => {
                let name = e.local_name().as_ref().to_owned();
                if let Some(entry) = current.as_mut() {
                    let value = text.trim().to_owned();
                    if field.as_deref() == Some(name.as_str()) {
                        store(entry, &name, value, &mut last_value_name);
                    }
                }
                text.clear();
                field = None;
                let closes_entry =
                    name == "entry" || (name == "alert" && root.as_deref() == Some("alert"));
                if closes_entry && let Some(entry) = current.take() {
                    entries.push(entry);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if root.is_none() {
        return Err("not a CAP/Atom feed: no XML element in it".into());
    }
    Ok(entries)
}

fn store(entry: &mut Entry, name: &str, value: String, last_value_name: &mut String) {
    let first = |slot: &mut String, value: String| {
        if slot.is_empty() {
            *slot = value;
        }
    };
    match name {
        "areaDesc" => entry.areas.push(value),
        "event" => first(&mut entry.event, value),
        "severity" => first(&mut entry.severity, value),
        "status" => first(&mut entry.status, value),
        // `msgType` in CAP, `message_type` in MeteoAlarm's Atom entries.
        "msgType" | "message_type" => first(&mut entry.msg_type, value),
        "identifier" => first(&mut entry.identifier, value),
        "onset" => {
            entry.onset.get_or_insert(value);
        }
        "expires" => {
            entry.expires.get_or_insert(value);
        }
        "valueName" => *last_value_name = value,
        "value" if last_value_name.eq_ignore_ascii_case("awareness_type") => {
            entry.awareness_type.get_or_insert(value);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2">
  <id>tag:meteoalarm.org,2021-02-19:IT</id>
  <title>MeteoAlarm</title>
  <entry>
    <cap:areaDesc>Toscana &amp; Umbria</cap:areaDesc>
    <cap:event>Orange Thunderstorm Warning</cap:event>
    <cap:onset>2026-12-02T00:00:00+01:00</cap:onset>
    <cap:expires>2099-12-02T23:59:59+01:00</cap:expires>
    <cap:severity>Severe</cap:severity>
    <cap:message_type>Alert</cap:message_type>
    <cap:status>Actual</cap:status>
    <cap:identifier>2.49.0.0.380.0.IT.1</cap:identifier>
    <title>Orange Thunderstorm Warning issued for Italy - Toscana</title>
  </entry>
  <entry>
    <cap:areaDesc>Sicilia</cap:areaDesc>
    <cap:event>Yellow High-temperature Warning</cap:event>
    <cap:severity>Moderate</cap:severity>
    <cap:status>Test</cap:status>
  </entry>
</feed>"#;

    #[test]
    fn reads_meteoalarm_atom_entries() {
        let e = entries(FEED.as_bytes()).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].areas, vec!["Toscana & Umbria".to_owned()]);
        assert_eq!(e[0].event, "Orange Thunderstorm Warning");
        assert_eq!(e[0].level(), Some(Level::Arancione));
        assert!(e[0].covers("TOSCANA"));
        assert!(!e[0].covers("Sicilia"));
        let now = Utc::now();
        assert!(e[0].in_force(now));
        assert!(!e[1].in_force(now), "a Test entry is not an alert");
        let tz = chrono_tz::Europe::Rome;
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(
            e[0].day(tz, today),
            NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(entries(b"<html><body>502</body></html>").is_err());
        assert!(entries(b"").is_err());
        assert!(entries(b"<feed><entry><a></b></entry></feed>").is_err());
    }
}
