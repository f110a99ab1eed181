//! Reads for the officer console (SPEC §17): who an alert has not reached,
//! how far it reached per zone, when deliveries went out, and why some
//! failed. Read-only: the console changes nothing here.

use std::collections::BTreeMap;

use super::sql::params;
use serde::Serialize;

use super::{Ledger, LedgerError};

/// One delivery tried for a recipient the alert has not reached.
#[derive(Debug, Clone, Serialize)]
pub struct Tried {
    pub channel: String,
    pub address: String,
    pub state: String,
    pub error: Option<String>,
}

/// A recipient none of whose deliveries was sent, delivered or
/// acknowledged (yet).
#[derive(Debug, Clone, Serialize)]
pub struct Unreached {
    /// The contact id, or `subscriber:<chat>` for a bot subscriber.
    pub recipient: String,
    pub tried: Vec<Tried>,
}

/// Recipients of one zone: how many, how many reached, how many
/// acknowledged.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ZoneReach {
    pub recipients: u64,
    pub reached: u64,
    pub acknowledged: u64,
}

/// Deliveries that failed for one reason on one channel.
#[derive(Debug, Clone, Serialize)]
pub struct Failures {
    pub channel: String,
    pub reason: String,
    pub count: u64,
}

/// "Reached" for one delivery row, in SQL, as 1 or 0: an integer, which
/// `MAX` takes on both backends (PostgreSQL has no `max(boolean)`).
const REACHED: &str =
    "(CASE WHEN state IN ('sent', 'delivered') OR acknowledged_at IS NOT NULL THEN 1 ELSE 0 END)";
/// "Acknowledged" for one delivery row, as 1 or 0 (see `REACHED`).
const ACKED: &str = "(CASE WHEN acknowledged_at IS NOT NULL THEN 1 ELSE 0 END)";

impl Ledger {
    /// The recipients of `alert_id` not reached on any channel, in plan
    /// order. Rows without a person behind them (the banner, a broadcast
    /// channel) are not recipients.
    pub fn not_reached(&self, alert_id: &str) -> Result<Vec<Unreached>, LedgerError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT d.recipient, d.channel, d.address, d.state, d.last_error
             FROM deliveries d
             JOIN (SELECT recipient FROM deliveries
                   WHERE alert_id = ?1 AND recipient IS NOT NULL AND recipient <> 'broadcast'
                   GROUP BY recipient HAVING MAX({REACHED}) = 0) u ON u.recipient = d.recipient
             WHERE d.alert_id = ?1
             ORDER BY (SELECT MIN(id) FROM deliveries x
                       WHERE x.alert_id = ?1 AND x.recipient = d.recipient), d.id"
        ))?;
        let mut out: Vec<Unreached> = Vec::new();
        let rows = stmt.query_map([alert_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Tried {
                    channel: r.get(1)?,
                    address: r.get(2)?,
                    state: r.get(3)?,
                    error: r.get(4)?,
                },
            ))
        })?;
        for row in rows {
            let (recipient, tried) = row?;
            match out.last_mut() {
                Some(last) if last.recipient == recipient => last.tried.push(tried),
                _ => out.push(Unreached {
                    recipient,
                    tried: vec![tried],
                }),
            }
        }
        Ok(out)
    }

    /// The registry contacts in `audience` with no delivery at all in
    /// `alert_id`: no channel of the alert reaches them (a landline when
    /// there is no voice channel, an address-less row in a Telegram-only
    /// alert). In file order. They are not reached either, and a volunteer's
    /// call may be their only warning. The registry is the files as last
    /// validated.
    pub fn unplanned_contacts(
        &self,
        alert_id: &str,
        audience: &super::AudienceFilter,
    ) -> Result<Vec<String>, LedgerError> {
        let sql = format!(
            "SELECT c.contact_id FROM registry_contacts c
             WHERE {}
               AND c.contact_id NOT IN (SELECT recipient FROM deliveries
                                        WHERE alert_id = ?1 AND recipient IS NOT NULL)
             ORDER BY c.row",
            super::registry::matches(&self.conn, "1")
        );
        let (all, zones, groups) = audience.sql_values();
        let mut stmt = self.conn.prepare(&sql)?;
        let ids = stmt
            .query_map(
                super::sql::Numbered(vec![
                    (1, &alert_id as &dyn super::sql::ToValue),
                    (11, &all as &dyn super::sql::ToValue),
                    (12, &zones as &dyn super::sql::ToValue),
                    (13, &groups as &dyn super::sql::ToValue),
                ]),
                |r| r.get(0),
            )?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    /// Per zone: the alert's recipients there, reached, acknowledged.
    /// Contacts' zones come from the contact registry (the files as last
    /// validated), subscribers' from their own subscription.
    pub fn zone_reach(&self, alert_id: &str) -> Result<BTreeMap<String, ZoneReach>, LedgerError> {
        let per_recipient = format!(
            "SELECT recipient, MAX({REACHED}) AS reached, MAX({ACKED}) AS acked
             FROM deliveries WHERE alert_id = ?1 AND recipient IS NOT NULL GROUP BY recipient"
        );
        let mut out: BTreeMap<String, ZoneReach> = BTreeMap::new();
        let mut add = |zone: String, reached: bool, acked: bool| {
            let z = out.entry(zone).or_default();
            z.recipients += 1;
            z.reached += reached as u64;
            z.acknowledged += acked as u64;
        };
        let mut contacts = self.conn.prepare(&format!(
            "WITH r AS ({per_recipient})
             SELECT DISTINCT z.zone, r.recipient, r.reached, r.acked
             FROM r JOIN registry_contacts c ON c.contact_id = r.recipient
                    JOIN registry_zones z ON z.row = c.row"
        ))?;
        for row in contacts.query_map([alert_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })? {
            let (zone, reached, acked) = row?;
            add(zone, reached, acked);
        }
        let mut subscribers = self.conn.prepare(&format!(
            "WITH r AS ({per_recipient})
             SELECT s.zones, r.reached, r.acked
             FROM r JOIN subscribers s ON r.recipient = 'subscriber:' || s.chat_id"
        ))?;
        for row in subscribers.query_map([alert_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })? {
            let (zones, reached, acked) = row?;
            for zone in zones.split(';').map(str::trim).filter(|z| !z.is_empty()) {
                add(zone.to_owned(), reached, acked);
            }
        }
        Ok(out)
    }

    /// When each delivery first went out (ms since the epoch), per channel,
    /// in time order: the after-action report's timeline.
    pub fn delivery_timeline(&self, alert_id: &str) -> Result<Vec<(String, i64)>, LedgerError> {
        let mut stmt = self.conn.prepare(
            "SELECT d.channel, MIN(a.at) AS first
             FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
             WHERE d.alert_id = ?1 AND a.outcome IN ('sent', 'delivered')
             GROUP BY d.id ORDER BY first, d.id",
        )?;
        let rows = stmt
            .query_map([alert_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Failed deliveries grouped by channel and reason, most frequent first.
    pub fn failure_reasons(&self, alert_id: &str) -> Result<Vec<Failures>, LedgerError> {
        let mut stmt = self.conn.prepare(
            "SELECT channel, COALESCE(NULLIF(last_error, ''), '(no reason recorded)'), COUNT(*)
             FROM deliveries WHERE alert_id = ?1 AND state = 'failed'
             GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
        )?;
        let rows = stmt
            .query_map(params![alert_id], |r| {
                Ok(Failures {
                    channel: r.get(0)?,
                    reason: r.get(1)?,
                    count: r.get::<_, i64>(2)? as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::ledger;

    /// One alert: c1 reached by email although its SMS failed, c2 failed,
    /// c3 still pending, subscriber 42 acknowledged, plus a broadcast
    /// channel and the banner (no person behind them).
    fn fixture(l: &super::Ledger) {
        l.conn
            .execute_batch(
                "INSERT INTO alerts (id, template, variables, status, msg_type, audience, channels,
                                     rendered, headline, created_at, operator, host, thread_id)
                 VALUES ('x', 't', '{}', 'Actual', 'Alert', '{}', '[]', '{}', 'h', 'now', 'o', 'h', 'x');
                 INSERT INTO deliveries (id, alert_id, channel, address, recipient, language, state,
                                         last_error, updated_at, token, acknowledged_at) VALUES
                   (1, 'x', 'sms', '+393330000001', 'c1', 'it', 'failed', NULL, 0, 't1', NULL),
                   (2, 'x', 'email', 'c1@example.it', 'c1', 'it', 'sent', NULL, 0, 't2', NULL),
                   (3, 'x', 'sms', '+393390000002', 'c2', 'it', 'failed', 'invalid number', 0, 't3', NULL),
                   (4, 'x', 'telegram', '42', 'subscriber:42', 'it', 'delivered', NULL, 0, 't4', 5),
                   (5, 'x', 'telegram', '@canale', 'broadcast', 'it', 'failed', 'x', 0, 't5', NULL),
                   (6, 'x', 'banner', 'public', NULL, 'it', 'failed', 'y', 0, 't6', NULL),
                   (7, 'x', 'sms', '+393330000003', 'c3', 'it', 'pending', NULL, 0, 't7', NULL);
                 INSERT INTO attempts (delivery_id, at, outcome) VALUES
                   (2, 1000, 'sent'), (3, 1500, 'permanent'), (4, 2000, 'delivered'), (4, 2500, 'sent');
                 INSERT INTO registry_contacts (row, contact_id) VALUES (1, 'c1'), (2, 'c2'), (3, 'c3');
                 INSERT INTO registry_zones (row, zone) VALUES (1, 'centro'), (2, 'centro'), (3, 'fibbiana');
                 INSERT INTO subscribers (chat_id, zones, created_at, updated_at)
                   VALUES ('42', 'centro;fibbiana', 'now', 'now');",
            )
            .expect("fixture");
    }

    #[test]
    fn not_reached_are_the_people_with_nothing_sent_delivered_or_acknowledged() {
        let (_dir, l) = ledger();
        fixture(&l);
        let unreached = l.not_reached("x").unwrap();
        let who: Vec<&str> = unreached.iter().map(|u| u.recipient.as_str()).collect();
        assert_eq!(who, ["c2", "c3"]);
        assert_eq!(
            unreached[0].tried[0].error.as_deref(),
            Some("invalid number")
        );
        assert_eq!(unreached[1].tried[0].state, "pending");
    }

    #[test]
    fn contacts_no_channel_of_the_alert_reaches_are_listed_in_file_order() {
        let (_dir, l) = ledger();
        fixture(&l);
        l.conn
            .execute_batch(
                "INSERT INTO registry_contacts (row, contact_id) VALUES (4, 'c4'), (5, 'c5'), (6, 'c6');
                 INSERT INTO registry_zones (row, zone) VALUES (4, 'fibbiana'), (5, 'centro'), (6, 'centro');",
            )
            .unwrap();
        let centro = super::super::AudienceFilter {
            all: false,
            zones: vec!["centro".into()],
            groups: vec![],
        };
        assert_eq!(l.unplanned_contacts("x", &centro).unwrap(), ["c5", "c6"]);
        let all = super::super::AudienceFilter {
            all: true,
            ..centro
        };
        assert_eq!(l.unplanned_contacts("x", &all).unwrap(), ["c4", "c5", "c6"]);
    }

    #[test]
    fn reach_per_zone_counts_contacts_and_subscribers_once_each() {
        let (_dir, l) = ledger();
        fixture(&l);
        let zones = l.zone_reach("x").unwrap();
        let z = |id: &str| zones[id].clone();
        assert_eq!(
            (
                z("centro").recipients,
                z("centro").reached,
                z("centro").acknowledged
            ),
            (3, 2, 1)
        );
        assert_eq!(
            (
                z("fibbiana").recipients,
                z("fibbiana").reached,
                z("fibbiana").acknowledged
            ),
            (2, 1, 1)
        );
    }

    #[test]
    fn timeline_takes_each_deliverys_first_success_and_failures_group_by_reason() {
        let (_dir, l) = ledger();
        fixture(&l);
        assert_eq!(
            l.delivery_timeline("x").unwrap(),
            [("email".to_owned(), 1000), ("telegram".to_owned(), 2000)]
        );
        let f: Vec<(String, String, u64)> = l
            .failure_reasons("x")
            .unwrap()
            .into_iter()
            .map(|f| (f.channel, f.reason, f.count))
            .collect();
        assert_eq!(f.len(), 4);
        assert!(f.contains(&("sms".into(), "invalid number".into(), 1)));
        assert!(f.contains(&("sms".into(), "(no reason recorded)".into(), 1)));
    }
}
