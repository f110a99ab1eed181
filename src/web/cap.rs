//! CAP 1.2 messages (OASIS), one file per alert: `cap/<id>.xml`. Element
//! order follows the schema's sequences; times carry the local offset and
//! no fraction (the schema's dateTime pattern rejects `Z` and fractions).

use std::collections::HashMap;
use std::io;

use chrono::{DateTime, Utc};
use quick_xml::Writer;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::{LiveAlert, Site, areas};
use crate::domain::{CapStatus, MsgType};

const NS: &str = "urn:oasis:names:tc:emergency:cap:1.2";
const RESPONSE_TYPES: [&str; 9] = [
    "Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None",
];

pub fn render(site: &Site, alert: &LiveAlert, sent_of: &HashMap<String, DateTime<Utc>>) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail; an error here would be a bug in the
    // writer, and the file would then be left as it was.
    let _ = write(&mut w, site, alert, sent_of);
    let mut text = String::from_utf8(w.into_inner()).unwrap_or_default();
    text.push('\n');
    text
}

fn el<W: io::Write>(w: &mut Writer<W>, name: &str, text: &str) -> io::Result<()> {
    // Only `<`, `>` and `&` need escaping in element text.
    w.create_element(name)
        .write_text_content(BytesText::from_escaped(partial_escape(text)))?;
    Ok(())
}

fn write<W: io::Write>(
    w: &mut Writer<W>,
    site: &Site,
    alert: &LiveAlert,
    sent_of: &HashMap<String, DateTime<Utc>>,
) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("alert")
        .with_attribute(("xmlns", NS))
        .write_inner_content(|w| {
            el(w, "identifier", &alert.id)?;
            el(w, "sender", &site.sender_id)?;
            el(w, "sent", &site.time(alert.sent))?;
            el(w, "status", alert.status.as_str())?;
            el(w, "msgType", alert.msg_type.as_str())?;
            el(w, "scope", "Public")?;
            let note = match (alert.status, alert.msg_type) {
                (CapStatus::Exercise, _) => Some("Esercitazione: non è un'emergenza reale."),
                (CapStatus::Test, _) => Some("Messaggio di prova tecnica."),
                (_, MsgType::Cancel) => Some("Revoca: il messaggio indicato non è più in vigore."),
                _ => None,
            };
            if let Some(note) = note {
                el(w, "note", note)?;
            }
            // "sender,identifier,sent" of each earlier message, space-separated.
            let refs: Vec<String> = alert
                .references
                .iter()
                .filter_map(|r| {
                    sent_of
                        .get(r)
                        .map(|t| format!("{},{r},{}", site.sender_id, site.time(*t)))
                })
                .collect();
            if !refs.is_empty() {
                el(w, "references", &refs.join(" "))?;
            }
            for (lang, info) in &alert.rendered.info {
                w.create_element("info").write_inner_content(|w| {
                    let meta = &alert.rendered.meta;
                    el(w, "language", lang)?;
                    el(w, "category", &meta.category)?;
                    el(w, "event", &meta.event)?;
                    if let Some(rt) = meta
                        .response_type
                        .as_deref()
                        .filter(|rt| RESPONSE_TYPES.contains(rt))
                    {
                        el(w, "responseType", rt)?;
                    }
                    el(w, "urgency", &meta.urgency)?;
                    el(w, "severity", &meta.severity)?;
                    el(w, "certainty", &meta.certainty)?;
                    el(w, "effective", &site.time(alert.sent))?;
                    if let Some(t) = alert.expires {
                        el(w, "expires", &site.time(t))?;
                    }
                    el(w, "senderName", &site.sender)?;
                    el(w, "headline", &info.headline)?;
                    el(w, "description", &info.description)?;
                    if let Some(i) = &info.instruction {
                        el(w, "instruction", i)?;
                    }
                    if let Some(url) = &site.public_url {
                        el(w, "web", url)?;
                    }
                    for area in areas(site, &alert.audience) {
                        w.create_element("area").write_inner_content(|w| {
                            el(w, "areaDesc", &area.desc)?;
                            if let Some(zone) = area.zone {
                                if let Some(p) = zone.polygon.as_deref().filter(|p| !p.is_empty()) {
                                    el(w, "polygon", p.trim())?;
                                }
                                for (name, value) in &zone.geocode {
                                    w.create_element("geocode").write_inner_content(|w| {
                                        el(w, "valueName", name)?;
                                        el(w, "value", value)
                                    })?;
                                }
                            }
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    Ok(())
}
