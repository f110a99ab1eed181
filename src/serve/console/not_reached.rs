//! `/console/alerts/ID/not-reached` (printable) and `….csv`: the
//! recipients none of whose deliveries was sent, delivered or
//! acknowledged, with their phone numbers, for volunteers to call. Names
//! and numbers come from the contact files (a landline is on the list even
//! when SMS never tried it); the numbers the ledger tried are added.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Serialize;

use super::{Console, local_time};
use crate::config::Config;
use crate::ledger::Ledger;

#[derive(Serialize)]
pub struct Person {
    pub recipient: String,
    pub name: String,
    pub phones: Vec<String>,
    /// "sms: failed (invalid number)", one per delivery tried.
    pub tried: Vec<String>,
}

/// Channels whose address is a phone number.
const PHONE_CHANNELS: [&str; 2] = ["sms", "voice"];

pub fn people(
    l: &Ledger,
    config: &Config,
    id: &str,
) -> Result<Vec<Person>, crate::ledger::LedgerError> {
    let mut unreached = l.not_reached(id)?;
    // Those no channel of the alert reaches have no delivery at all: they
    // are the first a volunteer must call.
    let row = l.alert(Some(id))?;
    let audience =
        crate::alert::registry::filter(&crate::alert::send::stored_audience(&row.audience));
    for recipient in l.unplanned_contacts(id, &audience)? {
        unreached.push(crate::ledger::Unreached {
            recipient,
            tried: Vec::new(),
        });
    }
    let wanted: BTreeSet<&str> = unreached.iter().map(|u| u.recipient.as_str()).collect();
    // Best effort: serve may run where the contact files are not readable;
    // the ledger's numbers are still shown.
    let mut contacts: HashMap<String, (String, Vec<String>)> = HashMap::new();
    let _ = crate::contacts::scan::<()>(config, |row| {
        if let Ok(c) = row
            && wanted.contains(c.id.as_str())
        {
            let phones = [c.phone.as_ref(), c.landline.as_ref()]
                .into_iter()
                .flatten()
                .map(|p| p.to_string())
                .collect();
            contacts.insert(c.id.clone(), (c.name.clone(), phones));
        }
        Ok(())
    });
    Ok(unreached
        .into_iter()
        .map(|u| {
            let (name, mut phones) = contacts.remove(&u.recipient).unwrap_or_default();
            for t in &u.tried {
                if PHONE_CHANNELS.contains(&t.channel.as_str()) && !phones.contains(&t.address) {
                    phones.push(t.address.clone());
                }
            }
            let mut tried: Vec<String> = u
                .tried
                .iter()
                .map(|t| match &t.error {
                    Some(e) if !e.is_empty() => format!("{}: {} ({e})", t.channel, t.state),
                    _ => format!("{}: {}", t.channel, t.state),
                })
                .collect();
            if tried.is_empty() {
                tried.push("no channel of this alert reaches them".to_owned());
            }
            let name = if name.is_empty() && u.recipient.starts_with("subscriber:") {
                "Telegram subscriber".to_owned()
            } else {
                name
            };
            Person {
                recipient: u.recipient,
                name,
                phones,
                tried,
            }
        })
        .collect())
}

pub async fn page(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let user = match c.user(&headers) {
        Ok(u) => u,
        Err(d) => return d.into_response(),
    };
    let ctx = c
        .read(move |l, config| {
            let row = l.alert(Some(&id))?;
            let people = people(l, config, &id)?;
            Ok(context! {
                alert => super::ser(&row),
                created => local_time(config, &row.created_at),
                now => local_time(config, &chrono::Utc::now().to_rfc3339()),
                people => super::ser(&people),
            })
        })
        .await;
    match ctx {
        Ok(ctx) => c.render("not_reached.html", &user, ctx),
        Err(r) => r,
    }
}

pub async fn csv(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(d) = c.user(&headers) {
        return d.into_response();
    }
    let file = format!(
        "attachment; filename=\"not-reached-{}.csv\"",
        safe_file_name(&id)
    );
    let body = c
        .read(move |l, config| {
            let people = people(l, config, &id)?;
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut write = |cells: &[&str]| {
                let cells: Vec<String> = cells.iter().map(|c| for_csv(c)).collect();
                w.write_record(&cells)
            };
            let _ = write(&["recipient", "name", "phones", "tried"]);
            for p in &people {
                let _ = write(&[
                    &p.recipient,
                    &p.name,
                    &p.phones.join(" "),
                    &p.tried.join("; "),
                ]);
            }
            Ok(w.into_inner().unwrap_or_default())
        })
        .await;
    match body {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, file),
            ],
            bytes,
        )
            .into_response(),
        Err(r) => r,
    }
}

/// A cell a spreadsheet will not run as a formula (SPEC §13): a leading
/// `=`, `-`, `@`, tab or CR gets a `'`. A `+` starts a formula too, except
/// in a phone number list, which is digits, `+` and spaces only (an
/// apostrophe there would break click-to-call).
fn for_csv(cell: &str) -> String {
    let phone_list = cell.starts_with('+')
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || c == '+' || c == ' ');
    if !phone_list && cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

fn safe_file_name(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_but_phone_numbers_kept() {
        assert_eq!(for_csv("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(for_csv("+1+cmd|x"), "'+1+cmd|x");
        assert_eq!(
            for_csv("+393331234567 +390571123456"),
            "+393331234567 +390571123456"
        );
        assert_eq!(for_csv("Mario"), "Mario");
    }
}
