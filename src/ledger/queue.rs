//! The work queue inside the ledger: claiming pending deliveries (in id
//! order, which keeps SQLite's writes sequential) and recording outcomes in
//! batches.

use super::sql::{OptionalExtension, params};

use super::{AlertState, Halt, Ledger, LedgerError, now_ms};
use crate::domain::{ChannelId, Recipient};

/// A delivery taken for sending (its row is now `sending`).
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub address: String,
    pub recipient: Recipient,
    pub language: String,
    pub attempts: u32,
    pub token: String,
    /// Not to be sent before this (µs since the epoch): the slot reserved
    /// for it under the channel's deployment-wide rate (PostgreSQL).
    pub not_before_us: Option<i64>,
}

/// What became of one attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        provider_id: Option<String>,
    },
    Delivered {
        provider_id: Option<String>,
    },
    /// Transient failure: back to `pending` until `at_ms`.
    Retry {
        at_ms: i64,
        error: String,
    },
    Failed {
        error: String,
    },
    /// Never attempted (the channel stopped, or the process is shutting
    /// down): back to `pending` without counting an attempt.
    Released {
        reason: String,
    },
}

/// What is left to do on one channel of an alert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Deliveries not in a final state.
    pub left: u64,
    /// When the next of them is due (ms), if any.
    pub next_due: Option<i64>,
    /// The alert is still being planned: more deliveries may come.
    pub planning: bool,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub delivery_id: i64,
    pub at_ms: i64,
    pub outcome: Outcome,
}

impl Ledger {
    /// Moves up to `limit` due pending deliveries of one channel to
    /// `sending` and returns them, lowest id first — only while the alert
    /// is `sending` and `owner` holds its lease, checked in the same
    /// transaction: a cancel, a pause or a lost lease stops the sender at
    /// its next claim (SPEC §11).
    pub fn claim(
        &mut self,
        alert_id: &str,
        owner: &str,
        channel: ChannelId,
        limit: usize,
    ) -> Result<Result<Vec<Claimed>, Halt>, LedgerError> {
        let now = now_ms();
        // SQLite: one immediate transaction, the single writer. PostgreSQL:
        // no transaction, two statements (the claim itself re-checks the
        // alert's state), so workers never wait for each other here.
        let postgres = self.conn.is_postgres();
        let tx = if postgres {
            None
        } else {
            Some(self.conn.unchecked_immediate_transaction()?)
        };
        let conn: &super::sql::Conn = match &tx {
            Some(t) => t,
            None => &self.conn,
        };
        let alert: Option<(String, Option<String>)> = conn
            .query_row(
                "SELECT state, lease_owner FROM alerts WHERE id = ?1",
                [alert_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((state, holder)) = alert else {
            return Err(LedgerError::UnknownAlert(alert_id.to_owned()));
        };
        let state: AlertState = state.parse()?;
        if state == AlertState::Settled && postgres && self.successor(alert_id)?.is_none() {
            // Another worker settled it: nothing is left for anyone.
            return Ok(Ok(Vec::new()));
        }
        if state != AlertState::Sending {
            return Ok(Err(Halt::State(state)));
        }
        // On PostgreSQL several workers share the alert (SPEC §18): each
        // claim is a per-delivery lease, rows locked by another worker's
        // claim are skipped, and a claim whose lease expired (its worker
        // died) is taken over; its outcome is unknown, so it is sent again.
        if !postgres && holder.as_deref() != Some(owner) {
            return Ok(Err(Halt::LeaseLost { holder }));
        }
        let row = |r: &super::sql::Row<'_>| {
            Ok(Claimed {
                id: r.get(0)?,
                address: r.get(1)?,
                recipient: Recipient::from_column(r.get::<_, Option<String>>(2)?.as_deref()),
                language: r.get(3)?,
                attempts: r.get(4)?,
                token: r.get(5)?,
                not_before_us: None,
            })
        };
        let mut claimed = if postgres {
            // Expired claims first (the partial index on `sending`), then
            // due pending ones (the queue index): one scan each, never an
            // OR of both, which PostgreSQL answers by walking the primary
            // key past every delivery already sent. Leases are in the
            // database's clock (ms), so a worker whose clock is ahead never
            // takes over a live claim.
            let lease = self.delivery_lease.as_millis() as i64;
            let mut claimed = Vec::new();
            for due in [
                format!(
                    "state = 'sending' AND lease_until < {} / 1000",
                    conn.clock_us()
                ),
                "state = 'pending' AND next_attempt_at <= ?4".to_owned(),
            ] {
                let left = limit.saturating_sub(claimed.len());
                if left == 0 {
                    break;
                }
                let sql = format!(
                    "UPDATE deliveries SET state = 'sending', updated_at = ?4,
                            lease_owner = ?5, lease_until = {now} / 1000 + ?6
                     WHERE id IN (SELECT id FROM deliveries
                                  WHERE alert_id = ?1 AND channel = ?2 AND {due}
                                  ORDER BY id LIMIT ?3
                                  FOR UPDATE SKIP LOCKED)
                       AND EXISTS (SELECT 1 FROM alerts WHERE id = ?1 AND state = 'sending')
                     RETURNING id, address, recipient, language, attempts, token",
                    now = conn.clock_us()
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(
                    params![alert_id, channel.as_str(), left as i64, now, owner, lease],
                    row,
                )?;
                claimed.extend(rows.collect::<Result<Vec<_>, _>>()?);
            }
            claimed
        } else {
            let mut stmt = conn.prepare_cached(
                "UPDATE deliveries SET state = 'sending', updated_at = ?4
                 WHERE id IN (SELECT id FROM deliveries
                              WHERE alert_id = ?1 AND channel = ?2 AND state = 'pending'
                                AND next_attempt_at <= ?4
                              ORDER BY id LIMIT ?3)
                 RETURNING id, address, recipient, language, attempts, token",
            )?;
            let rows =
                stmt.query_map(params![alert_id, channel.as_str(), limit as i64, now], row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        if let Some(tx) = tx {
            tx.commit()?;
        }
        claimed.sort_by_key(|c| c.id);
        Ok(Ok(claimed))
    }

    /// Reserves `count` consecutive send slots of `channel`, `interval_us`
    /// apart, after the last slot any worker reserved (or from now: `now_us`,
    /// else the database's clock). Returns the first slot and the time the
    /// reservation was made, both in that clock, so the caller waits for
    /// `first - made` by its own clock, whatever it says the time is. One
    /// statement: workers racing for slots get disjoint ones.
    pub fn reserve_slots(
        &self,
        channel: ChannelId,
        count: usize,
        interval_us: i64,
        now_us: Option<i64>,
    ) -> Result<(i64, i64), LedgerError> {
        let span = count as i64 * interval_us;
        let now = format!("COALESCE(CAST(?2 AS bigint), {})", self.conn.clock_us());
        Ok(self.conn.query_row(
            &format!(
                "INSERT INTO rate_slots (channel, next_at) VALUES (?1, {now} + CAST(?3 AS bigint))
                 ON CONFLICT (channel) DO UPDATE
                 SET next_at = CASE WHEN rate_slots.next_at > {now}
                                    THEN rate_slots.next_at ELSE {now} END + CAST(?3 AS bigint)
                 RETURNING next_at - CAST(?3 AS bigint), {now}"
            ),
            params![channel.as_str(), now_us, span],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Writes a batch of outcomes in one transaction. Each is written only
    /// while the delivery is still `sending` and, on PostgreSQL, still
    /// claimed by `owner`, in the same statement: an outcome from a worker
    /// whose claim was taken over changes nothing (its attempt is still
    /// recorded: a message did leave).
    pub fn record(&mut self, owner: &str, batch: &[Record]) -> Result<(), LedgerError> {
        if batch.is_empty() {
            return Ok(());
        }
        let owner = self.conn.is_postgres().then_some(owner);
        let tx = self.conn.transaction()?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE deliveries
                 SET state = ?2, attempts = attempts + ?3, next_attempt_at = ?4,
                     provider_id = COALESCE(?5, provider_id), last_error = ?6, updated_at = ?7,
                     lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1 AND state = 'sending'
                   AND (CAST(?8 AS text) IS NULL OR lease_owner = CAST(?8 AS text))",
            )?;
            let mut attempt = tx.prepare_cached(
                "INSERT INTO attempts (delivery_id, at, outcome, provider_id, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            // In delivery order (stable: one delivery's outcomes keep
            // theirs), so two workers' batches lock rows in the same order
            // and never deadlock (PostgreSQL).
            let mut ordered: Vec<&Record> = batch.iter().collect();
            ordered.sort_by_key(|r| r.delivery_id);
            for r in ordered {
                use super::DeliveryState as S;
                let (state, counted, next, provider, error, outcome) = match &r.outcome {
                    Outcome::Sent { provider_id } => {
                        (S::Sent, 1, 0, provider_id.as_deref(), None, "sent")
                    }
                    Outcome::Delivered { provider_id } => (
                        S::Delivered,
                        1,
                        0,
                        provider_id.as_deref(),
                        None,
                        "delivered",
                    ),
                    Outcome::Retry { at_ms, error } => (
                        S::Pending,
                        1,
                        *at_ms,
                        None,
                        Some(error.as_str()),
                        "transient",
                    ),
                    Outcome::Failed { error } => {
                        (S::Failed, 1, 0, None, Some(error.as_str()), "permanent")
                    }
                    Outcome::Released { reason } => (
                        S::Pending,
                        0,
                        0,
                        None,
                        Some(reason.as_str()),
                        "not-attempted",
                    ),
                };
                update.queue(params![
                    r.delivery_id,
                    state.as_str(),
                    counted,
                    next,
                    provider,
                    error,
                    r.at_ms,
                    owner
                ])?;
                attempt.queue(params![r.delivery_id, r.at_ms, outcome, provider, error])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Deliveries of one channel not yet in a final state, the earliest
    /// time one of them is due, and whether more may still be planned.
    /// Held deliveries (an escalation step, a voice call's next try) are not
    /// counted: `resume` releases them when due, so a lane never waits for
    /// them.
    pub fn unsettled(&self, alert_id: &str, channel: ChannelId) -> Result<Backlog, LedgerError> {
        Ok(self.conn.query_row(
            // Another worker's claim (PostgreSQL) is due when its lease ends.
            "SELECT COUNT(*),
                    MIN(CASE WHEN state = 'sending' AND lease_until IS NOT NULL
                             THEN lease_until ELSE next_attempt_at END),
                    EXISTS (SELECT 1 FROM plan_pending WHERE alert_id = ?1)
             FROM deliveries
             WHERE alert_id = ?1 AND channel = ?2 AND state IN ('pending', 'sending')
               AND held_until IS NULL",
            params![alert_id, channel.as_str()],
            |r| {
                Ok(Backlog {
                    left: r.get::<_, i64>(0)? as u64,
                    next_due: r.get(1)?,
                    planning: r.get(2)?,
                })
            },
        )?)
    }

    /// After a crash: deliveries left in `sending` have an unknown outcome.
    /// For an emergency a duplicate beats a loss, so they go back to
    /// `pending`. Returns how many.
    /// On PostgreSQL only the claims whose lease expired: the others belong
    /// to live workers.
    pub fn reset_sending(&self, alert_id: &str) -> Result<usize, LedgerError> {
        let now = now_ms();
        Ok(self.conn.execute(
            &format!(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = 0, updated_at = ?2,
                        last_error = 'outcome unknown after interruption: re-sent',
                        lease_owner = NULL, lease_until = NULL
                 WHERE alert_id = ?1 AND state = 'sending'
                   AND (lease_until IS NULL OR lease_until < {} / 1000)",
                self.conn.clock_us()
            ),
            params![alert_id, now],
        )?)
    }

    /// `retry`: failed deliveries get a fresh round of attempts.
    pub fn requeue_failed(
        &self,
        alert_id: &str,
        channel: Option<ChannelId>,
    ) -> Result<usize, LedgerError> {
        // A failed call gets a fresh round of `attempts` calls too.
        self.close_call_rounds(alert_id, channel)?;
        let n = self.conn.execute(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0, updated_at = ?3
             WHERE alert_id = ?1 AND state = 'failed' AND (CAST(?2 AS text) IS NULL OR channel = CAST(?2 AS text))",
            params![alert_id, channel.map(|c| c.as_str()), now_ms()],
        )?;
        if n > 0 {
            self.conn.execute(
                "UPDATE alerts SET state = 'sending', settled_at = NULL WHERE id = ?1 AND state = 'settled'",
                [alert_id],
            )?;
        }
        Ok(n)
    }

    /// Marks the alert settled when none of its deliveries is unfinished.
    pub fn settle_if_done(&self, alert_id: &str) -> Result<bool, LedgerError> {
        let n = self.conn.execute(
            "UPDATE alerts SET state = 'settled', settled_at = ?2
             WHERE id = ?1 AND state = 'sending'
               AND NOT EXISTS (SELECT 1 FROM deliveries
                               WHERE alert_id = ?1 AND state IN ('pending', 'sending'))
               AND NOT EXISTS (SELECT 1 FROM plan_pending WHERE alert_id = ?1)",
            params![alert_id, chrono::Utc::now().to_rfc3339()],
        )?;
        Ok(n == 1)
    }

    /// Alerts with unfinished deliveries, oldest first.
    pub fn unfinished_alerts(&self) -> Result<Vec<String>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM alerts WHERE state = 'sending' ORDER BY rowid")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }
}
