//! `feed.atom`: an Atom (RFC 4287) index of the live CAP messages, as the
//! OASIS "CAP feeds" practice has it: one entry per message, whose
//! `alternate` link (type `application/cap+xml`) is the CAP file. Updates
//! replace the entry of the message they update; a Cancel stays listed
//! until it expires so that aggregators see it.

use std::io;

use chrono::{DateTime, Utc};
use quick_xml::Writer;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::{LiveAlert, Site};

pub fn render(site: &Site, alerts: &[&LiveAlert], now: DateTime<Utc>) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = write(&mut w, site, alerts, now);
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

fn link<W: io::Write>(w: &mut Writer<W>, rel: &str, kind: &str, href: &str) -> io::Result<()> {
    w.create_element("link")
        .with_attribute(("rel", rel))
        .with_attribute(("type", kind))
        .with_attribute(("href", href))
        .write_empty()?;
    Ok(())
}

fn write<W: io::Write>(
    w: &mut Writer<W>,
    site: &Site,
    alerts: &[&LiveAlert],
    now: DateTime<Utc>,
) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    // The feed changed when its newest message was sent, or now when it is
    // empty (an alert just left it).
    let updated = alerts.iter().map(|a| a.sent).max().unwrap_or(now);
    let base = site.public_url.as_deref();
    w.create_element("feed")
        .with_attribute(("xmlns", "http://www.w3.org/2005/Atom"))
        .write_inner_content(|w| {
            el(
                w,
                "id",
                &base.map_or_else(
                    || format!("urn:allerta:{}:feed", site.sender_id),
                    |b| format!("{b}feed.atom"),
                ),
            )?;
            el(w, "title", &format!("{} — allerte in vigore", site.sender))?;
            el(w, "updated", &site.time(updated))?;
            w.create_element("author").write_inner_content(|w| {
                el(w, "name", &site.sender)?;
                if site.sender_id.contains('@') {
                    el(w, "email", &site.sender_id)?;
                }
                Ok(())
            })?;
            if let Some(b) = base {
                link(w, "self", "application/atom+xml", &format!("{b}feed.atom"))?;
            }
            for a in alerts {
                let url = site.cap_url(&a.id);
                let info = a
                    .rendered
                    .info
                    .get(&a.rendered.default_language)
                    .or_else(|| a.rendered.info.values().next());
                w.create_element("entry").write_inner_content(|w| {
                    el(
                        w,
                        "id",
                        &if base.is_some() {
                            url.clone()
                        } else {
                            format!("urn:allerta:{}:{}", site.sender_id, a.id)
                        },
                    )?;
                    el(
                        w,
                        "title",
                        info.map_or(a.rendered.meta.event.as_str(), |i| i.headline.as_str()),
                    )?;
                    el(w, "published", &site.time(a.sent))?;
                    el(w, "updated", &site.time(a.sent))?;
                    link(w, "alternate", "application/cap+xml", &url)?;
                    w.create_element("category")
                        .with_attribute(("term", a.msg_type.as_str()))
                        .with_attribute(("label", a.rendered.meta.severity.as_str()))
                        .write_empty()?;
                    if let Some(i) = info {
                        el(w, "summary", &i.description)?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    Ok(())
}
