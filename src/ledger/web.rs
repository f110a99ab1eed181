//! What the public web files are made of (SPEC §8.4): the alerts whose
//! banner delivery went out, and the `sent` times of the alerts they
//! reference.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset, Utc};

use super::{Ledger, LedgerError};
use crate::domain::{CapStatus, MsgType};

/// A banner delivery in one of these states means the alert went public.
const PUBLISHED: &str = "EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id
     AND d.channel = 'banner' AND d.state IN ('sending', 'sent', 'delivered'))";

/// An alert that went public, is not cancelled, and no published Update
/// replaced it. `rendered` is the stored rendering, for the web to read.
#[derive(Debug, Clone)]
pub struct PublishedAlert {
    pub id: String,
    pub status: CapStatus,
    pub msg_type: MsgType,
    pub references: Vec<String>,
    pub audience: serde_json::Value,
    pub rendered: serde_json::Value,
    pub sent: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
}

/// An RFC 3339 time (any offset) as UTC.
pub fn parse_utc(s: &str) -> Option<DateTime<Utc>> {
    DateTime::<FixedOffset>::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Ledger {
    /// The published alerts not cancelled, not expired by the database's
    /// clock and not replaced by a published Update (even one that expired
    /// since), oldest first. A row that cannot be read is logged and left
    /// out.
    pub fn published_alerts(&self) -> Result<Vec<PublishedAlert>, LedgerError> {
        let mut replaced = HashSet::new();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT refs FROM alerts a WHERE msg_type = 'Update' AND {PUBLISHED}"
        ))?;
        for refs in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let refs: Vec<String> = serde_json::from_str(&refs?).unwrap_or_default();
            replaced.extend(refs);
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, status, msg_type, refs, audience, rendered, created_at, expires_at
             FROM alerts a
             WHERE state != 'cancelled'
               AND (expires_at IS NULL OR {unexpired})
               AND {PUBLISHED}
             ORDER BY rowid",
            unexpired = if self.conn.is_postgres() {
                "CAST(expires_at AS timestamptz) > now()"
            } else {
                "julianday(expires_at) > julianday('now')"
            }
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        let mut alerts = Vec::new();
        for row in rows {
            let (id, status, msg_type, refs, audience, rendered, created, expires) = row?;
            if replaced.contains(&id) {
                continue;
            }
            let parsed = (|| {
                Some(PublishedAlert {
                    status: status.parse().ok()?,
                    msg_type: msg_type.parse().ok()?,
                    references: serde_json::from_str(&refs).ok()?,
                    audience: serde_json::from_str(&audience).ok()?,
                    rendered: serde_json::from_str(&rendered).ok()?,
                    sent: parse_utc(&created)?,
                    expires: match &expires {
                        Some(e) => Some(parse_utc(e)?),
                        None => None,
                    },
                    id: id.clone(),
                })
            })();
            match parsed {
                Some(a) => alerts.push(a),
                None => tracing::warn!(alert = %id, "alert row is unreadable: left off the web"),
            }
        }
        Ok(alerts)
    }

    /// The `sent` time of each of `ids` that exists (CAP `references`).
    pub fn sent_times<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, DateTime<Utc>>, LedgerError> {
        let mut sent_of = HashMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT created_at FROM alerts WHERE id = ?1")?;
        for id in ids {
            if sent_of.contains_key(id) {
                continue;
            }
            let created: Option<String> =
                stmt.query_map([id], |row| row.get(0))?.next().transpose()?;
            if let Some(t) = created.as_deref().and_then(parse_utc) {
                sent_of.insert(id.to_owned(), t);
            }
        }
        Ok(sent_of)
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::sql::params;

    use super::super::test_support::ledger;
    use super::*;

    /// An alert with one banner delivery in `banner` state.
    fn alert(l: &Ledger, id: &str, msg_type: &str, refs: &str, state: &str, banner: &str) {
        l.conn()
            .execute(
                "INSERT INTO alerts (id, template, variables, status, msg_type, refs, audience, channels,
                                     rendered, headline, created_at, operator, host, thread_id, state)
                 VALUES (?1, 't', '{}', 'Actual', ?2, ?3, '{}', '[\"banner\"]', '{}', 'h',
                         '2026-11-26T21:00:00Z', 'o', 'h', ?1, ?4)",
                params![id, msg_type, refs, state],
            )
            .expect("alert");
        l.conn()
            .execute(
                "INSERT INTO deliveries (alert_id, channel, address, language, state, updated_at, token)
                 VALUES (?1, 'banner', 'web', 'it', ?2, 0, 't' || ?1)",
                params![id, banner],
            )
            .expect("delivery");
    }

    fn ids(l: &Ledger) -> Vec<String> {
        l.published_alerts()
            .expect("load")
            .into_iter()
            .map(|a| a.id)
            .collect()
    }

    #[test]
    fn only_published_uncancelled_unreplaced_alerts_are_listed() {
        let (_d, l) = ledger();
        alert(&l, "live", "Alert", "[]", "sending", "sent");
        alert(&l, "planned", "Alert", "[]", "sending", "pending");
        alert(&l, "cancelled", "Alert", "[]", "cancelled", "sent");
        alert(&l, "old", "Alert", "[]", "settled", "delivered");
        alert(&l, "update", "Update", "[\"old\"]", "sending", "sending");
        assert_eq!(ids(&l), ["live", "update"]);
        let update = l.published_alerts().expect("load").pop().expect("update");
        assert_eq!(
            (update.status, update.msg_type, update.references),
            (CapStatus::Actual, MsgType::Update, vec!["old".to_owned()])
        );
        assert_eq!(
            update.sent,
            parse_utc("2026-11-26T22:00:00+01:00").expect("t")
        );
    }

    #[test]
    fn an_unreadable_row_is_left_out_and_references_get_their_times() {
        let (_d, l) = ledger();
        alert(&l, "good", "Alert", "[]", "sending", "sent");
        alert(&l, "bad", "Alert", "not json", "sending", "sent");
        assert_eq!(ids(&l), ["good"]);
        let times = l.sent_times(["good", "missing", "good"]).expect("times");
        assert_eq!(times.len(), 1);
        assert_eq!(times["good"], parse_utc("2026-11-26T21:00:00Z").expect("t"));
    }
}
