//! Follow-up messages (`update`, `cancel`): their audience is the
//! original's deliveries, copied inside the follow-up's plan transaction,
//! and a cancel stops what the original has not sent yet.

use std::collections::BTreeMap;

use super::sql::{Conn, OptionalExtension, params};

use super::{DeliveryState, Ledger, LedgerError, Planner, now_ms};
use crate::domain::ChannelId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    /// Everyone the original was for (not those skipped: opted out,
    /// invalid, cancelled).
    Update,
    /// Only those the original reached (`sent`, `delivered`) or is
    /// reaching right now (`sending`: in flight in another process, or of
    /// unknown outcome after a crash). A revocation to someone the alert
    /// missed is harmless; a missing one leaves a citizen acting on a
    /// cancelled alert.
    Cancel,
}

impl FollowUp {
    /// The original's deliveries a follow-up goes to.
    pub fn states(self) -> &'static [DeliveryState] {
        use DeliveryState as S;
        match self {
            Self::Update => &[S::Pending, S::Sending, S::Sent, S::Delivered, S::Failed],
            Self::Cancel => &[S::Sending, S::Sent, S::Delivered],
        }
    }

    fn sql(self) -> String {
        DeliveryState::sql_list(self.states())
    }
}

impl Ledger {
    /// How many deliveries per channel a follow-up of `original` would get.
    pub fn follow_up_counts(
        &self,
        original: &str,
        kind: FollowUp,
    ) -> Result<BTreeMap<ChannelId, u64>, LedgerError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT channel, COUNT(*) FROM deliveries
             WHERE alert_id = ?1 AND state IN {} GROUP BY channel",
            kind.sql()
        ))?;
        let mut out = BTreeMap::new();
        for row in stmt.query_map([original], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })? {
            let (channel, n) = row?;
            let channel = channel.parse::<ChannelId>().map_err(LedgerError::Corrupt)?;
            out.insert(channel, n as u64);
        }
        Ok(out)
    }

    /// The newest Update or Cancel that references `id`: (its id, msgType).
    pub fn successor(&self, id: &str) -> Result<Option<(String, String)>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT id, msg_type FROM alerts
                     WHERE msg_type IN ('Update', 'Cancel')
                       AND EXISTS (SELECT 1 FROM {} WHERE value = ?1)
                     ORDER BY rowid DESC LIMIT 1",
                    self.conn.json_each("alerts.refs")
                ),
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }
}

impl Planner<'_> {
    /// Copies the original's deliveries (channel, address, recipient,
    /// language) on `channels` to the follow-up alert `to`, as `pending`,
    /// inside the follow-up's plan transaction.
    pub fn copy_deliveries(
        &self,
        to: &str,
        original: &str,
        kind: FollowUp,
        channels: &[ChannelId],
    ) -> Result<usize, LedgerError> {
        copy_deliveries(self.conn(), to, original, kind, channels)
    }

    /// An Update supersedes what the original had not sent yet (see
    /// [`supersede_pending`]), inside the Update's plan transaction.
    pub fn supersede_pending(
        &self,
        original: &str,
        update_id: &str,
        abandoned_in_flight: bool,
    ) -> Result<usize, LedgerError> {
        supersede_pending(self.conn(), original, update_id, abandoned_in_flight)
    }

    /// Cancels `original` for `cancel_id` (see [`stop_original`]), inside
    /// the Cancel's plan transaction.
    pub fn stop_original(&self, original: &str, cancel_id: &str) -> Result<usize, LedgerError> {
        stop_original(self.conn(), original, cancel_id)
    }
}

/// Copies the original's deliveries (channel, address, recipient, language)
/// on `channels` to the follow-up alert `to`, as `pending`. A delivery the
/// original still holds for an escalation step (or a call's next try) stays
/// held until the same time: the thread's ladder goes on, and who has
/// acknowledged by then is skipped as before. Run it inside the
/// follow-up's plan transaction.
fn copy_deliveries(
    conn: &Conn,
    to: &str,
    original: &str,
    kind: FollowUp,
    channels: &[ChannelId],
) -> Result<usize, LedgerError> {
    let mut total = 0;
    let mut stmt = conn.prepare(&format!(
        "INSERT INTO deliveries (alert_id, channel, address, recipient, language, state, updated_at, token, outside_drill,
                                 escalation_step, held_until, next_attempt_at)
         SELECT ?1, channel, address, recipient, language, 'pending', ?4, {token}, outside_drill,
                escalation_step,
                CASE WHEN state = 'pending' THEN held_until END,
                CASE WHEN state = 'pending' AND held_until IS NOT NULL THEN next_attempt_at ELSE 0 END
         FROM deliveries WHERE alert_id = ?2 AND channel = ?3 AND state IN {}
         ORDER BY id
         ON CONFLICT (alert_id, channel, address) DO NOTHING",
        kind.sql(),
        token = conn.random_token(),
    ))?;
    for channel in channels {
        total += stmt.execute(params![to, original, channel.as_str(), now_ms()])?;
    }
    Ok(total)
}

/// An Update supersedes what the original had not sent yet: its `pending`
/// deliveries become `skipped`, so nobody gets the outdated text after the
/// new one (everyone in the audience gets the Update), and the original is
/// settled at once, so a process still sending it stops at its next claim
/// and `resume` never picks it up again. `abandoned_in_flight`: no live
/// process holds the original, so its `sending` rows (outcome unknown after
/// a crash) are skipped too instead of being re-sent later. Returns how
/// many deliveries were skipped. Run it inside the Update's plan
/// transaction.
fn supersede_pending(
    conn: &Conn,
    original: &str,
    update_id: &str,
    abandoned_in_flight: bool,
) -> Result<usize, LedgerError> {
    let reason = format!("superseded by update {update_id} before it was sent");
    let mut skipped = skip_pending(conn, original, &reason)?;
    if abandoned_in_flight {
        skipped += conn.execute(
            "UPDATE deliveries SET state = 'skipped', updated_at = ?3, last_error = ?2
             WHERE alert_id = ?1 AND state = 'sending'",
            params![
                original,
                format!("outcome unknown, not re-sent: superseded by update {update_id}"),
                now_ms()
            ],
        )?;
    }
    conn.execute(
        "UPDATE alerts SET state = 'settled', settled_at = COALESCE(settled_at, ?2)
         WHERE id = ?1 AND state IN ('sending', 'paused')",
        params![original, chrono::Utc::now().to_rfc3339()],
    )?;
    Ok(skipped)
}

/// Moves an alert's not-yet-sent deliveries to `skipped`, saying why.
fn skip_pending(conn: &Conn, alert_id: &str, reason: &str) -> Result<usize, LedgerError> {
    Ok(conn.execute(
        "UPDATE deliveries SET state = 'skipped', updated_at = ?3, last_error = ?2
         WHERE alert_id = ?1 AND state = 'pending'",
        params![alert_id, reason, now_ms()],
    )?)
}

/// Cancels `original` for `cancel_id`: its undelivered (`pending`)
/// deliveries become `skipped` and the alert `cancelled`. Returns how many
/// deliveries were stopped. Run it inside the Cancel's plan transaction.
fn stop_original(conn: &Conn, original: &str, cancel_id: &str) -> Result<usize, LedgerError> {
    let skipped = skip_pending(
        conn,
        original,
        &format!("cancelled by {cancel_id} before it was sent"),
    )?;
    conn.execute(
        "UPDATE alerts SET state = 'cancelled', settled_at = COALESCE(settled_at, ?2)
         WHERE id = ?1",
        params![original, chrono::Utc::now().to_rfc3339()],
    )?;
    Ok(skipped)
}

impl Ledger {
    /// Distinct (channel, address) a Cancel of the whole thread would reach:
    /// whoever any of its messages reached. Also how many of them are
    /// outside the drill audience.
    pub fn thread_cancel_counts(
        &self,
        thread: &[String],
    ) -> Result<(BTreeMap<ChannelId, u64>, u64), LedgerError> {
        let ids = serde_json::to_string(thread).unwrap_or_else(|_| "[]".into());
        let mut stmt = self.conn.prepare(&format!(
            "SELECT channel, COUNT(DISTINCT address), COUNT(DISTINCT CASE WHEN outside_drill = 1 THEN address END)
             FROM deliveries
             WHERE alert_id IN (SELECT value FROM {}) AND state IN {}
             GROUP BY channel",
            self.conn.json_each("?1"),
            FollowUp::Cancel.sql()
        ))?;
        let mut out = BTreeMap::new();
        let mut outside = 0;
        for row in stmt.query_map([ids], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })? {
            let (channel, n, o) = row?;
            let channel = channel.parse::<ChannelId>().map_err(LedgerError::Corrupt)?;
            out.insert(channel, n as u64);
            outside += o as u64;
        }
        Ok((out, outside))
    }
}
