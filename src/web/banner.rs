//! `banner.json` (read by `allerta-banner.js`, contract in web/README.md)
//! and `banner.html` (a fragment for a server-side include: inline styles,
//! no script, works with JavaScript off).

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::json;

use super::{LiveAlert, Site, areas};
use crate::domain::{CapStatus, ChannelId, MsgType};
use crate::template::html_escape;

/// Label and colours per severity (text on background; WCAG AA or better,
/// the same table as the widget).
fn look(severity: &str) -> (&'static str, &'static str, &'static str) {
    match severity {
        "Extreme" => ("Allerta rossa", "#A50E0E", "#fff"),
        "Severe" => ("Allerta arancione", "#F59E0B", "#000"),
        "Moderate" => ("Allerta gialla", "#FFD54F", "#000"),
        _ => ("Avviso", "#0B4F9C", "#fff"),
    }
}

/// One entry per alert and language, in the snapshot's order (most severe
/// first).
struct Entry<'a> {
    alert: &'a LiveAlert,
    language: &'a str,
    headline: &'a str,
    text: &'a str,
    instruction: Option<&'a str>,
}

fn entries<'a>(alerts: &[&'a LiveAlert]) -> Vec<Entry<'a>> {
    let mut out = Vec::new();
    for alert in alerts {
        // The default language first: the widget falls back to the first
        // entry when none is in the page's language.
        let default = &alert.rendered.default_language;
        let mut infos: Vec<_> = alert.rendered.info.iter().collect();
        infos.sort_by_key(|(lang, _)| *lang != default);
        for (lang, info) in infos {
            let text = alert
                .rendered
                .text(ChannelId::Banner, lang)
                .map_or(info.description.as_str(), |t| t.text.as_str());
            out.push(Entry {
                alert,
                language: lang,
                headline: &info.headline,
                text,
                instruction: info.instruction.as_deref(),
            });
        }
    }
    out
}

fn area_text(site: &Site, alert: &LiveAlert) -> String {
    areas(site, &alert.audience)
        .into_iter()
        .map(|a| a.desc)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn json(site: &Site, alerts: &[&LiveAlert], now: DateTime<Utc>) -> String {
    let list: Vec<serde_json::Value> = entries(alerts)
        .into_iter()
        .map(|e| {
            let a = e.alert;
            let severity = a.rendered.meta.severity.as_str();
            let (_, background, _) = look(severity);
            json!({
                "id": a.id,
                "status": a.status.as_str(),
                "msg_type": a.msg_type.as_str(),
                "severity": severity,
                "colour": background,
                "event": a.rendered.meta.event,
                "headline": e.headline,
                "text": e.text,
                "instruction": e.instruction,
                "area": area_text(site, a),
                "effective": site.time(a.sent),
                "expires": a.expires.map(|t| site.time(t)),
                "link": site.cap_url(&a.id),
                "language": e.language,
            })
        })
        .collect();
    let doc = json!({ "generated_at": site.time(now), "alerts": list });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{\"alerts\": []}".into());
    text.push('\n');
    text
}

const WEEKDAYS: [&str; 7] = [
    "lunedì",
    "martedì",
    "mercoledì",
    "giovedì",
    "venerdì",
    "sabato",
    "domenica",
];
const MONTHS: [&str; 12] = [
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
];

/// "giovedì 27 novembre": a day as it is said to citizens.
pub(crate) fn italian_date(d: &impl Datelike) -> String {
    format!(
        "{} {} {}",
        WEEKDAYS[d.weekday().num_days_from_monday() as usize],
        d.day(),
        MONTHS[d.month0() as usize]
    )
}

/// "giovedì 27 novembre, ore 11:00" in the comune's time zone.
fn italian_time(site: &Site, t: DateTime<Utc>) -> String {
    let l = t.with_timezone(&site.timezone);
    format!(
        "{}, ore {:02}:{:02}",
        italian_date(&l),
        l.hour(),
        l.minute()
    )
}

/// The fragment for `<!--#include virtual="…/banner.html" -->`: the alerts
/// in the site's default language, most severe first.
pub fn html(site: &Site, alerts: &[&LiveAlert], drill: bool) -> String {
    let shown: Vec<Entry<'_>> = entries(alerts)
        .into_iter()
        .filter(|e| e.language == e.alert.rendered.default_language)
        .collect();
    let mut out = format!(
        "<!-- allerta: {} active {} -->\n",
        shown.len(),
        if drill { "drill(s)" } else { "alert(s)" }
    );
    let p = "margin:.3em 0;color:inherit";
    for e in shown {
        let a = e.alert;
        let severity = a.rendered.meta.severity.as_str();
        let (label, background, colour) = look(severity);
        let exercise = a.status == CapStatus::Exercise;
        let border = if exercise { ";border:.3em dashed" } else { "" };
        out.push_str(&format!(
            "<div class=\"allerta-banner allerta-sev-{}{}\" role=\"alert\" lang=\"{}\" style=\"box-sizing:border-box;width:100%;margin:0;padding:.75em 1em;background:{background};color:{colour};font-size:max(1em,16px);line-height:1.45;overflow-wrap:break-word{border}\">\n<div style=\"max-width:60em;margin:0 auto\">\n",
            severity.to_lowercase(),
            if exercise { " allerta-exercise" } else { "" },
            html_escape(e.language),
        ));
        let mut top = String::new();
        if exercise {
            top.push_str("<span style=\"display:inline-block;border:2px solid;padding:0 .35em;margin-right:.4em\">ESERCITAZIONE</span>");
        }
        if a.msg_type == MsgType::Update {
            top.push_str("<span style=\"display:inline-block;border:2px solid;padding:0 .35em;margin-right:.4em\">Aggiornamento</span>");
        }
        top.push_str(label);
        if !a.rendered.meta.event.is_empty() {
            top.push_str(&format!(" — {}", html_escape(&a.rendered.meta.event)));
        }
        out.push_str(&format!(
            "<p style=\"{p};font-size:1em;font-weight:700;text-transform:uppercase\">{top}</p>\n"
        ));
        if exercise {
            out.push_str(&format!(
                "<p style=\"{p};font-size:1em\">Esercitazione: non è un'emergenza reale.</p>\n"
            ));
        }
        out.push_str(&format!(
            "<p style=\"{p};font-size:1.2em;font-weight:700\">{}</p>\n",
            html_escape(e.headline)
        ));
        out.push_str(&format!(
            "<p style=\"{p};font-size:1em;white-space:pre-line\">{}</p>\n",
            html_escape(e.text)
        ));
        if let Some(i) = e.instruction {
            out.push_str(&format!(
                "<p style=\"{p};font-size:1em;white-space:pre-line\">{}</p>\n",
                html_escape(i)
            ));
        }
        let until = match a.expires {
            Some(t) => format!("Valida fino a {}", italian_time(site, t)),
            None => "Valida fino a nuovo avviso".to_owned(),
        };
        let link = site.cap_url(&a.id);
        let details = if link.starts_with("http://") || link.starts_with("https://") {
            format!(
                " · <a href=\"{}\" style=\"color:inherit;text-decoration:underline;font-weight:700\">Dettagli</a>",
                html_escape(&link)
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "<p style=\"{p};font-size:1em\">Zona: {} · {until}{details}</p>\n</div>\n</div>\n",
            html_escape(&area_text(site, a))
        ));
    }
    out
}
