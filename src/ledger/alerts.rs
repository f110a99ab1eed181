//! An alert's life in the ledger (SPEC §11): its state, the lease that
//! makes one process its only sender, its thread of follow-ups, and the
//! counts the safety rules look at. Every transition is one statement
//! guarded by the state it leaves, so two processes never both win.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::sql::{OptionalExtension, params};

use super::{Ledger, LedgerError, lease_holder_alive, now_ms};

/// `alert.state` (SPEC §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    AwaitingApproval,
    Sending,
    Paused,
    Settled,
    Cancelled,
    Rejected,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingApproval => "awaiting_approval",
            Self::Sending => "sending",
            Self::Paused => "paused",
            Self::Settled => "settled",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
        }
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlertState {
    type Err = LedgerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "awaiting_approval" => Self::AwaitingApproval,
            "sending" => Self::Sending,
            "paused" => Self::Paused,
            "settled" => Self::Settled,
            "cancelled" => Self::Cancelled,
            "rejected" => Self::Rejected,
            other => {
                return Err(LedgerError::Corrupt(format!(
                    "unknown alert state `{other}`"
                )));
            }
        })
    }
}

/// Why a sender must stop claiming deliveries of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// The alert left `sending` (cancelled, paused, superseded…).
    State(AlertState),
    /// Another process took the lease.
    LeaseLost { holder: Option<String> },
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::State(AlertState::Cancelled) => {
                f.write_str("the alert was cancelled while this process was sending it")
            }
            Self::State(AlertState::Paused) => f.write_str("the alert was paused"),
            Self::State(AlertState::Settled) => f.write_str(
                "the alert was superseded by an update while this process was sending it",
            ),
            Self::State(state) => write!(f, "the alert is now {state}"),
            Self::LeaseLost { holder: Some(h) } => {
                write!(f, "another process ({h}) took over sending this alert")
            }
            Self::LeaseLost { holder: None } => {
                f.write_str("this process no longer holds the alert's lease")
            }
        }
    }
}

impl Ledger {
    /// The lease as stored: holder and expiry (ms).
    fn read_lease(&self, alert_id: &str) -> Result<(Option<String>, Option<i64>), LedgerError> {
        self.conn
            .query_row(
                "SELECT lease_owner, lease_until FROM alerts WHERE id = ?1",
                [alert_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| LedgerError::UnknownAlert(alert_id.to_owned()))
    }

    /// Takes the right to send an alert's deliveries. Atomic: the lease is
    /// swapped only from the holder that was seen, so of two processes
    /// racing for it exactly one wins. A lease is free when it expired or
    /// its process is gone from this host. Returns the live holder when it
    /// is someone else's.
    pub fn acquire_lease(
        &self,
        alert_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<String>, LedgerError> {
        if self.conn.is_postgres() {
            // Per-delivery leases instead (SPEC §18): any number of workers.
            return Ok(None);
        }
        for _ in 0..5 {
            let now = now_ms();
            let (holder, until) = self.read_lease(alert_id)?;
            if let (Some(h), Some(until)) = (&holder, until)
                && h != owner
                && until > now
                && lease_holder_alive(h)
            {
                return Ok(Some(h.clone()));
            }
            let swapped = self.conn.execute(
                "UPDATE alerts SET lease_owner = ?2, lease_until = ?3
                 WHERE id = ?1 AND lease_owner IS NOT DISTINCT FROM ?4",
                params![alert_id, owner, now + ttl.as_millis() as i64, holder],
            )?;
            if swapped == 1 {
                return Ok(None);
            }
        }
        Err(LedgerError::Corrupt(format!(
            "alert {alert_id}: its lease keeps changing hands"
        )))
    }

    /// Extends a lease this process holds; false when it was lost.
    pub fn renew_lease(
        &self,
        alert_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, LedgerError> {
        if self.conn.is_postgres() {
            // The claims this worker holds stay its own.
            self.conn.execute(
                &format!(
                    "UPDATE deliveries SET lease_until = {} / 1000 + ?3
                     WHERE alert_id = ?1 AND lease_owner = ?2 AND state = 'sending'",
                    self.conn.clock_us()
                ),
                params![alert_id, owner, self.delivery_lease.as_millis() as i64],
            )?;
            return Ok(true);
        }
        Ok(self.conn.execute(
            "UPDATE alerts SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2",
            params![alert_id, owner, now_ms() + ttl.as_millis() as i64],
        )? == 1)
    }

    pub fn release_lease(&self, alert_id: &str, owner: &str) -> Result<(), LedgerError> {
        if self.conn.is_postgres() {
            return Ok(());
        }
        self.conn.execute(
            "UPDATE alerts SET lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND lease_owner = ?2",
            params![alert_id, owner],
        )?;
        Ok(())
    }

    /// The live holder of an alert's lease other than `owner`, if any.
    pub fn lease_holder(&self, alert_id: &str, owner: &str) -> Result<Option<String>, LedgerError> {
        if self.conn.is_postgres() {
            return Ok(None);
        }
        Ok(match self.read_lease(alert_id)? {
            (Some(h), Some(until)) if h != owner && until > now_ms() && lease_holder_alive(&h) => {
                Some(h)
            }
            _ => None,
        })
    }

    pub fn alert_state(&self, alert_id: &str) -> Result<AlertState, LedgerError> {
        let state: Option<String> = self
            .conn
            .query_row("SELECT state FROM alerts WHERE id = ?1", [alert_id], |r| {
                r.get(0)
            })
            .optional()?;
        state
            .ok_or_else(|| LedgerError::UnknownAlert(alert_id.to_owned()))?
            .parse()
    }

    /// Moves an alert from one state to another; false when it was not in
    /// `from` (someone else moved it first).
    pub fn transition(
        &self,
        alert_id: &str,
        from: AlertState,
        to: AlertState,
    ) -> Result<bool, LedgerError> {
        let settled = matches!(
            to,
            AlertState::Settled | AlertState::Cancelled | AlertState::Rejected
        );
        Ok(self.conn.execute(
            "UPDATE alerts SET state = ?3,
                    settled_at = CASE WHEN ?4 THEN COALESCE(settled_at, ?5) ELSE NULL END
             WHERE id = ?1 AND state = ?2",
            params![
                alert_id,
                from.as_str(),
                to.as_str(),
                settled,
                chrono::Utc::now().to_rfc3339()
            ],
        )? == 1)
    }

    /// Records the approver (or rejecter) and moves the alert out of
    /// `awaiting_approval`; a rejected alert's deliveries become `skipped`.
    /// An approved alert's escalation steps count from the approval, not
    /// from the creation: the time spent waiting for a second person never
    /// makes the ladder's steps due before the first round has gone out
    /// (SPEC §14). False when it was no longer awaiting approval.
    pub fn decide_approval(
        &mut self,
        alert_id: &str,
        by: &str,
        approved: bool,
        reason: &str,
    ) -> Result<bool, LedgerError> {
        let tx = self.conn.transaction()?;
        let to = if approved {
            AlertState::Sending
        } else {
            AlertState::Rejected
        };
        let n = tx.execute(
            "UPDATE alerts SET state = ?2, decided_by = ?3, approval_deadline = NULL,
                    settled_at = CASE WHEN ?4 THEN NULL ELSE ?5 END
             WHERE id = ?1 AND state = 'awaiting_approval'",
            params![
                alert_id,
                to.as_str(),
                by,
                approved,
                chrono::Utc::now().to_rfc3339()
            ],
        )?;
        if n == 1 && !approved {
            tx.execute(
                "UPDATE deliveries SET state = 'skipped', last_error = ?2, updated_at = ?3
                 WHERE alert_id = ?1 AND state = 'pending'",
                params![alert_id, reason, now_ms()],
            )?;
        }
        if n == 1 && approved {
            let created: String = tx.query_row(
                "SELECT created_at FROM alerts WHERE id = ?1",
                [alert_id],
                |r| r.get(0),
            )?;
            let waited = chrono::DateTime::parse_from_rfc3339(&created)
                .map(|t| (now_ms() - t.timestamp_millis()).max(0))
                .map_err(|e| LedgerError::Corrupt(format!("alert {alert_id}: created_at: {e}")))?;
            tx.execute(
                "UPDATE deliveries SET held_until = held_until + ?2
                 WHERE alert_id = ?1 AND state = 'pending' AND escalation_step IS NOT NULL
                   AND held_until IS NOT NULL",
                params![alert_id, waited],
            )?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// Alerts awaiting approval whose deadline passed (RFC 3339 compare is
    /// safe: every stored time is UTC with the same format).
    pub fn expired_approvals(&self, now_rfc3339: &str) -> Result<Vec<String>, LedgerError> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM alerts WHERE state = 'awaiting_approval'
               AND approval_deadline IS NOT NULL AND approval_deadline <= ?1 ORDER BY rowid",
        )?;
        let ids = stmt
            .query_map([now_rfc3339], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// Alerts awaiting approval, oldest first.
    pub fn awaiting_approval(&self) -> Result<Vec<String>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM alerts WHERE state = 'awaiting_approval' ORDER BY rowid")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// Every message of a thread, oldest first.
    pub fn thread(&self, thread_id: &str) -> Result<Vec<String>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM alerts WHERE thread_id = ?1 ORDER BY rowid")?;
        let ids = stmt
            .query_map([thread_id], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// Deliveries in the given states whose recipient is outside the drill
    /// audience: the ones that make an action need confirmation.
    pub fn outside_drill(
        &self,
        alert_id: &str,
        states: &[super::DeliveryState],
    ) -> Result<u64, LedgerError> {
        Ok(self.conn.query_row(
            &format!(
                "SELECT COUNT(*) FROM deliveries
                 WHERE alert_id = ?1 AND outside_drill = 1 AND state IN {}",
                super::DeliveryState::sql_list(states)
            ),
            [alert_id],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// The alert that holds an idempotency key, with its fingerprint.
    pub fn alert_by_key(&self, key: &str) -> Result<Option<(String, String)>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, COALESCE(fingerprint, '') FROM alerts WHERE idem_key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in [
            AlertState::AwaitingApproval,
            AlertState::Sending,
            AlertState::Paused,
            AlertState::Settled,
            AlertState::Cancelled,
            AlertState::Rejected,
        ] {
            assert_eq!(s.as_str().parse::<AlertState>().expect("parse"), s);
        }
        assert!("sent".parse::<AlertState>().is_err());
    }
}

#[cfg(test)]
mod lease_tests {
    use super::*;

    fn ledger_with_alert(state: &str) -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = Ledger::open(dir.path().join("t.db")).expect("open");
        ledger
            .conn()
            .execute(
                "INSERT INTO alerts (id, template, variables, status, msg_type, audience, channels,
                                     rendered, headline, created_at, operator, host, thread_id, state)
                 VALUES ('a', 't', '{}', 'Actual', 'Alert', '{}', '[]', '{}', 'h', 'now', 'o', 'h', 'a', ?1)",
                [state],
            )
            .expect("alert");
        ledger
            .conn()
            .execute(
                "INSERT INTO deliveries (alert_id, channel, address, language, state, updated_at, token)
                 VALUES ('a', 'sms', '+393330000001', 'it', 'pending', 0, 'k')",
                [],
            )
            .expect("delivery");
        (dir, ledger)
    }

    /// A holder on another host: alive until its lease expires.
    const OTHER: &str = "elsewhere.example:1";

    #[test]
    fn of_two_owners_only_one_holds_the_lease() {
        let (_d, l) = ledger_with_alert("sending");
        assert_eq!(l.acquire_lease("a", OTHER, LONG).expect("first"), None);
        assert_eq!(
            l.acquire_lease("a", "me.example:2", LONG).expect("second"),
            Some(OTHER.to_owned())
        );
        assert!(!l.renew_lease("a", "me.example:2", LONG).expect("renew"));
        assert!(l.renew_lease("a", OTHER, LONG).expect("renew"));
    }

    #[test]
    fn an_expired_lease_is_taken_over() {
        let (_d, l) = ledger_with_alert("sending");
        assert_eq!(
            l.acquire_lease("a", OTHER, Duration::ZERO).expect("first"),
            None
        );
        assert_eq!(
            l.acquire_lease("a", "me.example:2", LONG)
                .expect("takeover"),
            None
        );
    }

    #[test]
    fn a_claim_halts_when_the_alert_is_cancelled_or_the_lease_is_lost() {
        let (_d, mut l) = ledger_with_alert("sending");
        assert_eq!(l.acquire_lease("a", OTHER, LONG).expect("lease"), None);
        let halt = l
            .claim("a", "me.example:2", crate::domain::ChannelId::Sms, 10)
            .expect("claim");
        assert!(matches!(halt, Err(Halt::LeaseLost { .. })), "{halt:?}");
        assert!(
            l.transition("a", AlertState::Sending, AlertState::Cancelled)
                .expect("cancel")
        );
        let halt = l
            .claim("a", OTHER, crate::domain::ChannelId::Sms, 10)
            .expect("claim");
        assert_eq!(
            halt.map(|v| v.len()),
            Err(Halt::State(AlertState::Cancelled))
        );
        assert_eq!(
            l.conn()
                .query_row("SELECT state FROM deliveries", [], |r| r
                    .get::<_, String>(0))
                .expect("state"),
            "pending",
            "a halted claim changes nothing"
        );
    }

    #[test]
    fn a_claim_by_the_holder_of_a_sending_alert_takes_the_delivery() {
        let (_d, mut l) = ledger_with_alert("sending");
        assert_eq!(l.acquire_lease("a", OTHER, LONG).expect("lease"), None);
        let got = l
            .claim("a", OTHER, crate::domain::ChannelId::Sms, 10)
            .expect("claim")
            .expect("no halt");
        assert_eq!(got.len(), 1);
    }

    const LONG: Duration = Duration::from_secs(60);
}
