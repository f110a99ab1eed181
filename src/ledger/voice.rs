//! Voice calls (SPEC §14): the calls placed for a delivery, the call's
//! instructions looked up by delivery and key, and the provider's status
//! and keypress callbacks. Every callback is bound to one delivery by its
//! id and token; a repeated callback changes nothing; a callback about an
//! older call of the same delivery is kept as evidence only.

use super::sql::{Behavior, OptionalExtension, params};
use serde_json::json;

use super::escalation::HELD;
use super::{Ack, Ledger, LedgerError};

/// One call placed for a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    pub sid: String,
    pub status: Option<String>,
}

/// What the call's instructions need: the alert's rendered texts and the
/// delivery's language.
#[derive(Debug, Clone)]
pub struct CallTarget {
    pub rendered: String,
    pub language: String,
}

/// How busy and unanswered calls are tried again (`[channels.voice]`).
#[derive(Debug, Clone, Copy)]
pub struct CallPolicy {
    /// Calls in total.
    pub attempts: u32,
    pub retry_after_ms: i64,
}

/// What a status callback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEffect {
    Delivered,
    /// Busy or no answer: held for call `n + 1` at `at_ms`.
    Retry {
        at_ms: i64,
    },
    Failed,
    /// Kept as evidence, state unchanged (intermediate, late, older call).
    Recorded,
    Duplicate,
    /// No such delivery, or the key does not match.
    Unknown,
}

impl CallEffect {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry { .. } => "retry",
            Self::Failed => "failed",
            Self::Recorded => "recorded",
            Self::Duplicate => "duplicate",
            Self::Unknown => "unknown",
        }
    }
}

/// A call status that no later callback changes.
pub fn is_final_status(status: &str) -> bool {
    matches!(
        status,
        "completed" | "busy" | "no-answer" | "failed" | "canceled"
    )
}

/// The delivery's token, compared in constant time; never an empty one.
fn same_secret(token: &str, given: &str) -> bool {
    !token.is_empty() && super::reports::same_secret(token, given)
}

impl Ledger {
    /// The calls placed for a delivery in this round, oldest first.
    pub fn voice_calls(&self, delivery_id: i64) -> Result<Vec<CallRow>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT sid, status FROM voice_calls WHERE delivery_id = ?1 AND closed = 0
             ORDER BY placed_at, rowid",
        )?;
        let rows = stmt
            .query_map([delivery_id], |r| {
                Ok(CallRow {
                    sid: r.get(0)?,
                    status: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Records a call the provider just accepted, and its id as the
    /// delivery's provider id: committed before the sender does anything
    /// else, so a crash right after never loses which call was placed.
    pub fn record_call(&self, delivery_id: i64, sid: &str, now: i64) -> Result<(), LedgerError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO voice_calls (sid, delivery_id, placed_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (sid) DO NOTHING",
            params![sid, delivery_id, now],
        )?;
        tx.execute(
            "UPDATE deliveries SET provider_id = ?2 WHERE id = ?1",
            params![delivery_id, sid],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// `retry`: the calls of the failed voice deliveries about to be
    /// re-queued belong to an earlier round; the next round may place
    /// `attempts` calls again.
    pub(super) fn close_call_rounds(
        &self,
        alert_id: &str,
        channel: Option<crate::domain::ChannelId>,
    ) -> Result<usize, LedgerError> {
        if channel.is_some_and(|c| c != crate::domain::ChannelId::Voice) {
            return Ok(0);
        }
        Ok(self.conn.execute(
            "UPDATE voice_calls SET closed = 1
             WHERE closed = 0 AND delivery_id IN (SELECT id FROM deliveries
                   WHERE alert_id = ?1 AND channel = 'voice' AND state = 'failed')",
            [alert_id],
        )?)
    }

    /// Remembers what the provider said of a call (a lookup after a crash).
    pub fn note_call_status(&self, sid: &str, status: &str, now: i64) -> Result<(), LedgerError> {
        self.conn.execute(
            "UPDATE voice_calls SET status = ?2, updated_at = ?3 WHERE sid = ?1",
            params![sid, status, now],
        )?;
        Ok(())
    }

    /// The delivery a voice request names, if its key matches.
    pub fn call_target(
        &self,
        delivery_id: i64,
        key: &str,
    ) -> Result<Option<CallTarget>, LedgerError> {
        let row: Option<(String, String, String)> = self
            .conn
            .query_row(
                "SELECT d.token, d.language, a.rendered FROM deliveries d JOIN alerts a ON a.id = d.alert_id
                 WHERE d.id = ?1 AND d.channel = 'voice'",
                [delivery_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(row
            .filter(|(token, _, _)| same_secret(token, key))
            .map(|(_, language, rendered)| CallTarget { rendered, language }))
    }

    /// Applies a status callback of call `sid` for delivery `delivery_id`
    /// (authenticated by `key`), in one transaction.
    ///
    /// `completed` → `delivered`; `busy` / `no-answer` → held for the next
    /// call while fewer than `policy.attempts` calls were placed, else
    /// `failed`; `failed` / `canceled` → `failed` at once (an invalid
    /// number is not called again). Intermediate statuses are evidence.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_call_status(
        &mut self,
        delivery_id: i64,
        key: &str,
        sid: &str,
        status: &str,
        detail: &serde_json::Value,
        policy: CallPolicy,
        now: i64,
    ) -> Result<CallEffect, LedgerError> {
        let tx = self.conn.transaction_with_behavior(Behavior::Immediate)?;
        let row: Option<(String, String, Option<String>, String, String)> = tx
            .query_row(
                "SELECT d.token, d.state, d.provider_id, d.alert_id, a.state
                 FROM deliveries d JOIN alerts a ON a.id = d.alert_id
                 WHERE d.id = ?1 AND d.channel = 'voice'",
                [delivery_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((token, state, provider_id, alert_id, alert_state)) = row else {
            return Ok(CallEffect::Unknown);
        };
        if !same_secret(&token, key) || sid.is_empty() {
            return Ok(CallEffect::Unknown);
        }
        let call: Option<(i64, Option<String>)> = tx
            .query_row(
                "SELECT delivery_id, status FROM voice_calls WHERE sid = ?1",
                [sid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let previous = match call {
            Some((owner, _)) if owner != delivery_id => return Ok(CallEffect::Unknown),
            Some((_, status)) => status,
            None => {
                // The sender crashed before recording it: the callback says
                // which call was placed.
                tx.execute(
                    "INSERT INTO voice_calls (sid, delivery_id, placed_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                    params![sid, delivery_id, now],
                )?;
                None
            }
        };
        if previous.as_deref() == Some(status) || previous.as_deref().is_some_and(is_final_status) {
            return Ok(CallEffect::Duplicate);
        }
        tx.execute(
            "UPDATE voice_calls SET status = ?2, answered_by = COALESCE(?3, answered_by), updated_at = ?4
             WHERE sid = ?1",
            params![
                sid,
                status,
                detail.get("AnsweredBy").and_then(|v| v.as_str()),
                now
            ],
        )?;
        tx.execute(
            "INSERT INTO attempts (delivery_id, at, outcome, provider_id, detail) VALUES (?1, ?2, 'report', ?3, ?4)",
            params![
                delivery_id,
                now,
                sid,
                json!({ "source": "voice", "status": status, "report": detail }).to_string()
            ],
        )?;
        let current = provider_id.as_deref().is_none_or(|p| p == sid);
        let open = matches!(state.as_str(), "pending" | "sending" | "sent");
        if !current || !open || !is_final_status(status) {
            if provider_id.is_none() {
                tx.execute(
                    "UPDATE deliveries SET provider_id = ?2 WHERE id = ?1",
                    params![delivery_id, sid],
                )?;
            }
            tx.commit()?;
            return Ok(CallEffect::Recorded);
        }
        let calls: i64 = tx.query_row(
            "SELECT COUNT(*) FROM voice_calls WHERE delivery_id = ?1 AND closed = 0",
            [delivery_id],
            |r| r.get(0),
        )?;
        let error_code = detail
            .get("ErrorCode")
            .and_then(|v| v.as_str())
            .filter(|c| !c.is_empty());
        let alive = matches!(alert_state.as_str(), "sending" | "settled");
        let effect = match status {
            "completed" => {
                tx.execute(
                    "UPDATE deliveries SET state = 'delivered', provider_id = ?2, held_until = NULL,
                            last_error = NULL, updated_at = ?3 WHERE id = ?1",
                    params![delivery_id, sid, now],
                )?;
                CallEffect::Delivered
            }
            "busy" | "no-answer" if alive && (calls as u32) < policy.attempts => {
                let at_ms = now + policy.retry_after_ms;
                tx.execute(
                    "UPDATE deliveries SET state = 'pending', provider_id = ?2, held_until = ?3,
                            next_attempt_at = ?4, last_error = ?5, updated_at = ?6 WHERE id = ?1",
                    params![
                        delivery_id,
                        sid,
                        at_ms,
                        HELD,
                        format!(
                            "{status} (call {calls} of {}): called again later",
                            policy.attempts
                        ),
                        now
                    ],
                )?;
                // A settled alert has work again: the timer's `resume` finishes it.
                tx.execute(
                    "UPDATE alerts SET state = 'sending', settled_at = NULL WHERE id = ?1 AND state = 'settled'",
                    [&alert_id],
                )?;
                CallEffect::Retry { at_ms }
            }
            _ => {
                let reason = match status {
                    "busy" | "no-answer" if !alive => {
                        format!("{status}: the alert is {alert_state}, not called again")
                    }
                    "busy" | "no-answer" => format!("{status} on each of {calls} calls"),
                    _ => format!(
                        "call {status}{}",
                        error_code
                            .map(|c| format!(" (provider error {c})"))
                            .unwrap_or_default()
                    ),
                };
                tx.execute(
                    "UPDATE deliveries SET state = 'failed', provider_id = ?2, held_until = NULL,
                            last_error = ?3, updated_at = ?4 WHERE id = ?1",
                    params![delivery_id, sid, reason, now],
                )?;
                CallEffect::Failed
            }
        };
        tx.commit()?;
        Ok(effect)
    }

    /// A key pressed during the call: `1` is an acknowledgement, like
    /// Telegram's "Ricevuto" (and the call was answered and played).
    pub fn acknowledge_call(
        &mut self,
        delivery_id: i64,
        key: &str,
        digits: &str,
        now: i64,
    ) -> Result<Ack, LedgerError> {
        let tx = self.conn.transaction_with_behavior(Behavior::Immediate)?;
        let row: Option<(String, Option<i64>)> = tx
            .query_row(
                "SELECT token, acknowledged_at FROM deliveries WHERE id = ?1 AND channel = 'voice'",
                [delivery_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((token, acked)) = row else {
            return Ok(Ack::Invalid);
        };
        if !same_secret(&token, key) || digits.trim() != "1" {
            return Ok(Ack::Invalid);
        }
        if acked.is_some() {
            return Ok(Ack::AlreadyRecorded);
        }
        tx.execute(
            "UPDATE deliveries SET acknowledged_at = ?2,
                    state = CASE WHEN state IN ('pending', 'sending', 'sent') THEN 'delivered' ELSE state END,
                    held_until = NULL, updated_at = ?2
             WHERE id = ?1",
            params![delivery_id, now],
        )?;
        tx.execute(
            "INSERT INTO attempts (delivery_id, at, outcome, detail) VALUES (?1, ?2, 'report', ?3)",
            params![
                delivery_id,
                now,
                json!({ "source": "voice", "digits": "1" }).to_string()
            ],
        )?;
        tx.commit()?;
        Ok(Ack::Recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::ledger;
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const POLICY: CallPolicy = CallPolicy {
        attempts: 2,
        retry_after_ms: 1_000,
    };

    fn voice_delivery(l: &Ledger, state: &str) {
        l.conn()
            .execute_batch(&format!(
                "INSERT INTO alerts (id, template, variables, status, msg_type, audience, channels,
                                     rendered, headline, created_at, operator, host, thread_id, state)
                 VALUES ('a1', 't', '{{}}', 'Actual', 'Alert', '{{}}', '[]', '{{}}', 'h', 'now', 'o', 'h', 'a1', 'settled');
                 INSERT INTO deliveries (id, alert_id, channel, address, recipient, language, state, updated_at, token)
                 VALUES (7, 'a1', 'voice', '+390551000001', 'c1', 'it', '{state}', 0, '{KEY}');"
            ))
            .expect("rows");
    }

    fn row(l: &Ledger) -> (String, Option<i64>, Option<String>) {
        l.conn()
            .query_row(
                "SELECT state, held_until, last_error FROM deliveries WHERE id = 7",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("row")
    }

    fn status(l: &mut Ledger, key: &str, sid: &str, status: &str, now: i64) -> CallEffect {
        l.apply_call_status(7, key, sid, status, &json!({}), POLICY, now)
            .expect("apply")
    }

    #[test]
    fn busy_is_held_for_the_next_call_until_attempts_run_out() {
        let (_d, mut l) = ledger();
        voice_delivery(&l, "sent");
        l.record_call(7, "CA1", 10).expect("call");
        assert_eq!(
            status(&mut l, KEY, "CA1", "ringing", 20),
            CallEffect::Recorded
        );
        assert_eq!(
            status(&mut l, KEY, "CA1", "busy", 30),
            CallEffect::Retry { at_ms: 1_030 }
        );
        assert_eq!(row(&l).0, "pending");
        assert_eq!(row(&l).1, Some(1_030));
        let alert: String = l
            .conn()
            .query_row("SELECT state FROM alerts WHERE id = 'a1'", [], |r| r.get(0))
            .expect("alert");
        assert_eq!(alert, "sending", "the settled alert has work again");
        // The same callback again changes nothing.
        assert_eq!(
            status(&mut l, KEY, "CA1", "busy", 40),
            CallEffect::Duplicate
        );
        // Second call, no answer: attempts = 2 are spent.
        l.conn()
            .execute(
                "UPDATE deliveries SET state = 'sent', held_until = NULL WHERE id = 7",
                [],
            )
            .expect("sent again");
        l.record_call(7, "CA2", 2_000).expect("call");
        assert_eq!(
            status(&mut l, KEY, "CA2", "no-answer", 2_100),
            CallEffect::Failed
        );
        let (state, held, error) = row(&l);
        assert_eq!((state.as_str(), held), ("failed", None));
        assert!(error.unwrap_or_default().contains("on each of 2 calls"));
        // A late callback of the first call is evidence only.
        assert_eq!(
            status(&mut l, KEY, "CA1", "completed", 3_000),
            CallEffect::Duplicate
        );
        assert_eq!(row(&l).0, "failed");
    }

    #[test]
    fn a_wrong_key_or_another_deliverys_call_changes_nothing() {
        let (_d, mut l) = ledger();
        voice_delivery(&l, "sent");
        l.record_call(7, "CA1", 10).expect("call");
        let wrong = "0123456789abcdef0123456789abcdee";
        assert_eq!(
            status(&mut l, wrong, "CA1", "completed", 20),
            CallEffect::Unknown
        );
        assert_eq!(
            status(&mut l, "", "CA1", "completed", 20),
            CallEffect::Unknown
        );
        assert_eq!(row(&l).0, "sent");
        assert_eq!(
            l.acknowledge_call(7, wrong, "1", 30).expect("ack"),
            Ack::Invalid
        );
        assert_eq!(
            l.call_target(7, wrong).expect("target").map(|t| t.language),
            None
        );
        assert_eq!(
            status(&mut l, KEY, "CA1", "completed", 40),
            CallEffect::Delivered
        );
        assert_eq!(
            l.acknowledge_call(7, KEY, "1", 50).expect("ack"),
            Ack::Recorded
        );
        assert_eq!(
            l.acknowledge_call(7, KEY, "1", 60).expect("ack"),
            Ack::AlreadyRecorded
        );
    }

    #[test]
    fn a_call_the_sender_never_recorded_is_learnt_from_its_callback() {
        let (_d, mut l) = ledger();
        voice_delivery(&l, "sending");
        assert_eq!(status(&mut l, KEY, "CA9", "failed", 20), CallEffect::Failed);
        assert_eq!(
            l.voice_calls(7).expect("calls"),
            vec![CallRow {
                sid: "CA9".into(),
                status: Some("failed".into())
            }]
        );
    }
}
