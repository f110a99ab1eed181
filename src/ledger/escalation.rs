//! Held deliveries (migration 6): escalation steps planned with the alert
//! and voice calls waiting for their next try. `resume` releases the due
//! ones whose recipient acknowledged nothing on any channel of the
//! alert's thread, and skips the others.

use super::sql::{OptionalExtension, params};

use super::{Ledger, LedgerError};
use crate::domain::ChannelId;

/// `next_attempt_at` of a held delivery: never due for a claim.
pub(super) const HELD: i64 = i64::MAX;

/// What a release did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    pub released: usize,
    /// Skipped: their recipient acknowledged meanwhile.
    pub skipped: usize,
}

/// The escalation block of `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationSummary {
    pub acknowledged: u64,
    pub not_acknowledged: u64,
    /// The next held step: its channel and when it is due (ms).
    pub next: Option<(ChannelId, i64)>,
}

/// A recipient with an acknowledgement on any delivery of `d`'s thread.
const ACKED: &str = "d.recipient IS NOT NULL AND EXISTS (
        SELECT 1 FROM deliveries o JOIN alerts oa ON oa.id = o.alert_id
        WHERE oa.thread_id = (SELECT thread_id FROM alerts WHERE id = d.alert_id)
          AND o.recipient = d.recipient AND o.acknowledged_at IS NOT NULL)";

impl Ledger {
    /// Releases the due held deliveries of `alert_id`: claimable at once,
    /// unless their recipient acknowledged on any channel of the thread,
    /// then `skipped` with the reason.
    pub fn release_due(&self, alert_id: &str, now: i64) -> Result<Released, LedgerError> {
        let tx = self.conn.unchecked_transaction()?;
        let skipped = tx.execute(
            &format!(
                "UPDATE deliveries AS d SET state = 'skipped', held_until = NULL, next_attempt_at = 0,
                        updated_at = ?2, last_error = 'acknowledged on another message or channel before this step: not sent'
                 WHERE d.alert_id = ?1 AND d.state = 'pending' AND d.held_until IS NOT NULL
                   AND d.held_until <= ?2 AND {ACKED}"
            ),
            params![alert_id, now],
        )?;
        let released = tx.execute(
            "UPDATE deliveries SET held_until = NULL, next_attempt_at = 0, updated_at = ?2
             WHERE alert_id = ?1 AND state = 'pending' AND held_until IS NOT NULL AND held_until <= ?2",
            params![alert_id, now],
        )?;
        tx.commit()?;
        Ok(Released { released, skipped })
    }

    /// Whether `resume` has anything to do for the alert now: a delivery
    /// pending and not held, one in `sending`, a held one that is due, or
    /// a plan cut short (its rest is planned by the resume).
    pub fn has_work(&self, alert_id: &str, now: i64) -> Result<bool, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM deliveries
                 WHERE alert_id = ?1 AND (state = 'sending'
                       OR (state = 'pending' AND (held_until IS NULL OR held_until <= ?2)))
                 UNION ALL SELECT 1 FROM plan_pending WHERE alert_id = ?1
                 LIMIT 1",
                params![alert_id, now],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Deliveries held for later (not counted as left to send now).
    pub fn held_count(&self, alert_id: &str) -> Result<u64, LedgerError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM deliveries WHERE alert_id = ?1 AND state = 'pending' AND held_until IS NOT NULL",
            [alert_id],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Who acknowledged (on any message of the thread), who did not, and
    /// the next held step.
    pub fn escalation_summary(&self, alert_id: &str) -> Result<EscalationSummary, LedgerError> {
        let (acknowledged, total): (i64, i64) = self.conn.query_row(
            &format!(
                "SELECT COUNT(DISTINCT CASE WHEN {ACKED} THEN d.recipient END), COUNT(DISTINCT d.recipient)
                 FROM deliveries d
                 WHERE d.alert_id = ?1 AND d.recipient IS NOT NULL AND d.recipient <> 'broadcast'"
            ),
            [alert_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let next: Option<(String, i64)> = self
            .conn
            .query_row(
                "SELECT channel, held_until FROM deliveries
                 WHERE alert_id = ?1 AND state = 'pending' AND held_until IS NOT NULL
                 ORDER BY held_until, id LIMIT 1",
                [alert_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let next = next
            .map(|(c, at)| {
                c.parse::<ChannelId>()
                    .map(|c| (c, at))
                    .map_err(LedgerError::Corrupt)
            })
            .transpose()?;
        Ok(EscalationSummary {
            acknowledged: acknowledged as u64,
            not_acknowledged: (total - acknowledged).max(0) as u64,
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::ledger;
    use super::*;

    fn insert(l: &Ledger, id: i64, channel: &str, recipient: &str, held: Option<i64>) {
        l.conn()
            .execute(
                "INSERT INTO alerts (id, template, variables, status, msg_type, audience, channels,
                                               rendered, headline, created_at, operator, host, thread_id)
                 VALUES ('a1', 't', '{}', 'Actual', 'Alert', '{}', '[]', '{}', 'h', 'now', 'o', 'h', 'a1')
                 ON CONFLICT DO NOTHING",
                [],
            )
            .expect("alert");
        l.conn()
            .execute(
                "INSERT INTO deliveries (id, alert_id, channel, address, recipient, language, state,
                                         updated_at, token, held_until, next_attempt_at)
                 VALUES (?1, 'a1', ?2, ?3, ?4, 'it', 'pending', 0, 'tok', ?5, ?6)",
                params![id, channel, format!("addr{id}"), recipient, held, if held.is_some() { HELD } else { 0 }],
            )
            .expect("insert");
    }

    #[test]
    fn a_due_step_is_released_only_for_who_did_not_acknowledge() {
        let (_d, l) = ledger();
        insert(&l, 10, "telegram", "c1", None);
        insert(&l, 11, "telegram", "c2", None);
        insert(&l, 20, "sms", "c1", Some(1_000));
        insert(&l, 21, "sms", "c2", Some(1_000));
        l.conn()
            .execute(
                "UPDATE deliveries SET acknowledged_at = 5 WHERE id = 10",
                [],
            )
            .expect("ack");
        assert_eq!(
            l.escalation_summary("a1").expect("s"),
            EscalationSummary {
                acknowledged: 1,
                not_acknowledged: 1,
                next: Some((ChannelId::Sms, 1_000))
            }
        );
        assert_eq!(l.release_due("a1", 999).expect("r"), Released::default());
        assert!(l.has_work("a1", 999).expect("w"), "first round pending");
        assert_eq!(
            l.release_due("a1", 1_000).expect("r"),
            Released {
                released: 1,
                skipped: 1
            }
        );
        let state = |id: i64| -> (String, i64) {
            l.conn()
                .query_row(
                    "SELECT state, next_attempt_at FROM deliveries WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .expect("row")
        };
        assert_eq!(state(20).0, "skipped");
        assert_eq!(state(21), ("pending".to_owned(), 0));
        assert_eq!(l.escalation_summary("a1").expect("s").next, None);
    }
}
