//! Delivery reports (SPEC §8.2): the only way a delivery moves from `sent`
//! to `delivered` or `failed` after the send. Idempotent: an exact repeat
//! changes nothing, a late report never downgrades a final state, and every
//! other report is kept raw with the delivery's attempts (outcome `report`).

use super::sql::{Behavior, OptionalExtension, params};
use serde_json::json;

use super::{Ledger, LedgerError};
use crate::domain::ChannelId;

/// What a report says about the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportState {
    /// On the phone.
    Delivered,
    /// Will never arrive (rejected, undeliverable, expired).
    Failed,
    /// Intermediate (queued, accepted by the SMSC): evidence only.
    Progress,
}

impl ReportState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Progress => "progress",
        }
    }
}

/// How the report names its delivery.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// Our delivery id and the delivery's own token (from our callback URL).
    Delivery { id: i64, token: &'a str },
    /// The provider's message id, as recorded at send time.
    Provider(&'a str),
}

#[derive(Debug, Clone)]
pub struct Report {
    pub channel: ChannelId,
    pub state: ReportState,
    /// (part, parts) for a message sent in several parts: delivered only
    /// when every part is.
    pub part: Option<(u32, u32)>,
    pub provider_id: Option<String>,
    /// Short reason for a failure (the SMSC's answer, an error code).
    pub reason: Option<String>,
    /// Where it came from (`kannel`, `http`).
    pub source: &'static str,
    /// The report as received: its parameters, kept as evidence.
    pub raw: serde_json::Value,
}

/// What applying a report did.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The delivery is now delivered; seconds since its send, if known.
    Delivered { latency_s: Option<f64> },
    /// The delivery is now failed.
    Failed { latency_s: Option<f64> },
    /// Kept with the delivery, state unchanged (intermediate, late, or a
    /// part of a message whose other parts are not delivered yet).
    Recorded,
    /// The very same report was already recorded: nothing changed.
    Duplicate,
    /// No such delivery (or the delivery token does not match).
    Unknown,
}

impl Effect {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delivered { .. } => "delivered",
            Self::Failed { .. } => "failed",
            Self::Recorded => "recorded",
            Self::Duplicate => "duplicate",
            Self::Unknown => "unknown",
        }
    }
}

/// Compares secrets without leaking where they differ through timing.
pub(super) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Ledger {
    /// Applies one delivery report in one transaction.
    ///
    /// Transitions: `delivered` from `pending`, `sending` or `sent` (a
    /// delivery waiting for a retry that in fact arrived is not sent again);
    /// `failed` from `sending` or `sent`. `sending` is allowed because the
    /// engine commits outcomes in batches: a fast gateway reports before
    /// `sent` is written, and the engine's later write only applies to rows
    /// still in `sending`. `delivered` and `failed` are final.
    pub fn apply_report(
        &mut self,
        lookup: Lookup<'_>,
        report: &Report,
        at_ms: i64,
    ) -> Result<Effect, LedgerError> {
        let tx = self.conn.transaction_with_behavior(Behavior::Immediate)?;
        let found: Option<(i64, String)> = match lookup {
            Lookup::Delivery { id, token } => tx
                .query_row(
                    "SELECT id, token FROM deliveries WHERE id = ?1 AND channel = ?2",
                    params![id, report.channel.as_str()],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?
                .filter(|(_, stored)| same_secret(stored, token)),
            Lookup::Provider(pid) => tx
                .query_row(
                    "SELECT id, token FROM deliveries WHERE channel = ?1 AND provider_id = ?2
                     ORDER BY id DESC LIMIT 1",
                    params![report.channel.as_str(), pid],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
        };
        let Some((delivery_id, _)) = found else {
            return Ok(Effect::Unknown);
        };
        // Before any change: a report can beat the engine's batched `sent`
        // write, and then the claim time is the best "sent at" there is.
        let (prior_state, prior_at): (String, i64) = tx.query_row(
            "SELECT state, updated_at FROM deliveries WHERE id = ?1",
            [delivery_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (part, parts) = report.part.unwrap_or((1, 1));
        let detail = json!({
            "source": report.source,
            "state": report.state.as_str(),
            "part": part,
            "parts": parts,
            "reason": report.reason,
            "report": report.raw,
        })
        .to_string();
        let repeated: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM attempts
                            WHERE delivery_id = ?1 AND outcome = 'report' AND detail = ?2)",
            params![delivery_id, detail],
            |r| r.get(0),
        )?;
        if repeated {
            return Ok(Effect::Duplicate);
        }
        tx.execute(
            "INSERT INTO attempts (delivery_id, at, outcome, provider_id, detail)
             VALUES (?1, ?2, 'report', ?3, ?4)",
            params![delivery_id, at_ms, report.provider_id, detail],
        )?;
        let complete = match report.state {
            ReportState::Delivered if parts > 1 => {
                let delivered_parts: u32 = tx.query_row(
                    &format!(
                        "SELECT COUNT(DISTINCT {part}) FROM attempts
                         WHERE delivery_id = ?1 AND outcome = 'report'
                           AND {state} = 'delivered' AND {parts} = CAST(?2 AS text)",
                        part = tx.json_text("detail", "'part'"),
                        state = tx.json_text("detail", "'state'"),
                        parts = tx.json_text("detail", "'parts'"),
                    ),
                    params![delivery_id, parts],
                    |r| r.get(0),
                )?;
                delivered_parts >= parts
            }
            _ => true,
        };
        let changed = match report.state {
            ReportState::Delivered if complete => tx.execute(
                "UPDATE deliveries SET state = 'delivered', last_error = NULL, updated_at = ?2
                 WHERE id = ?1 AND state IN ('pending', 'sending', 'sent')",
                params![delivery_id, at_ms],
            )?,
            ReportState::Failed => tx.execute(
                "UPDATE deliveries SET state = 'failed', updated_at = ?2,
                        last_error = ?3
                 WHERE id = ?1 AND state IN ('sending', 'sent')",
                params![
                    delivery_id,
                    at_ms,
                    format!(
                        "delivery report: {}",
                        report.reason.as_deref().unwrap_or("not delivered")
                    )
                ],
            )?,
            _ => 0,
        };
        let effect = if changed == 0 {
            Effect::Recorded
        } else {
            let sent_at: Option<i64> = tx.query_row(
                "SELECT MIN(at) FROM attempts WHERE delivery_id = ?1 AND outcome = 'sent'",
                [delivery_id],
                |r| r.get(0),
            )?;
            let sent_at = sent_at.or((prior_state == "sending").then_some(prior_at));
            let latency_s = sent_at.map(|t| (at_ms - t).max(0) as f64 / 1000.0);
            match report.state {
                ReportState::Delivered => Effect::Delivered { latency_s },
                _ => Effect::Failed { latency_s },
            }
        };
        tx.commit()?;
        Ok(effect)
    }

    /// Deliveries per channel and state over every alert (for /metrics).
    pub fn state_totals(&self) -> Result<Vec<(String, String, u64)>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT channel, state, COUNT(*) FROM deliveries GROUP BY channel, state ORDER BY 1, 2",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_with(states: &[&str]) -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path().join("t.db")).unwrap();
        ledger
            .conn()
            .execute(
                "INSERT INTO alerts (id, template, variables, status, msg_type, audience, channels,
                                     rendered, headline, created_at, operator, host, thread_id)
                 VALUES ('a', 't', '{}', 'Actual', 'Alert', '{}', '[]', '{}', 'h', 'now', 'o', 'h', 'a')",
                [],
            )
            .unwrap();
        for (i, state) in states.iter().enumerate() {
            ledger
                .conn()
                .execute(
                    "INSERT INTO deliveries (id, alert_id, channel, address, language, state, updated_at, token)
                     VALUES (?1, 'a', 'sms', ?2, 'it', ?3, 0, 'k')",
                    params![i as i64 + 1, format!("+39333000000{i}"), state],
                )
                .unwrap();
        }
        (dir, ledger)
    }

    fn report(state: ReportState, part: Option<(u32, u32)>) -> Report {
        Report {
            channel: ChannelId::Sms,
            state,
            part,
            provider_id: None,
            reason: Some("r".into()),
            source: "kannel",
            raw: json!({ "status": state.as_str(), "part": part.map(|p| p.0) }),
        }
    }

    fn state(l: &Ledger, id: i64) -> String {
        l.conn()
            .query_row("SELECT state FROM deliveries WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
    }

    fn by_id(id: i64) -> Lookup<'static> {
        Lookup::Delivery { id, token: "k" }
    }

    #[test]
    fn a_failure_report_never_fails_a_delivery_waiting_for_its_retry_or_a_delivered_one() {
        let (_d, mut l) = ledger_with(&["pending", "delivered"]);
        let failed = report(ReportState::Failed, None);
        assert_eq!(
            l.apply_report(by_id(1), &failed, 1).unwrap(),
            Effect::Recorded
        );
        assert_eq!(
            l.apply_report(by_id(2), &failed, 1).unwrap(),
            Effect::Recorded
        );
        assert_eq!(
            (state(&l, 1).as_str(), state(&l, 2).as_str()),
            ("pending", "delivered")
        );
    }

    #[test]
    fn delivered_while_sending_wins_over_the_engines_later_write() {
        let (_d, mut l) = ledger_with(&["sending"]);
        let effect = l
            .apply_report(by_id(1), &report(ReportState::Delivered, None), 1)
            .unwrap();
        assert!(matches!(effect, Effect::Delivered { .. }));
        // The engine's batched outcome only applies to rows still `sending`.
        l.record(
            "test",
            &[crate::ledger::Record {
                delivery_id: 1,
                at_ms: 2,
                outcome: crate::ledger::Outcome::Sent { provider_id: None },
            }],
        )
        .unwrap();
        assert_eq!(state(&l, 1), "delivered");
    }

    #[test]
    fn a_message_in_parts_is_delivered_when_every_part_is() {
        let (_d, mut l) = ledger_with(&["sent"]);
        let part = |n| report(ReportState::Delivered, Some((n, 3)));
        assert_eq!(
            l.apply_report(by_id(1), &part(1), 1).unwrap(),
            Effect::Recorded
        );
        assert_eq!(
            l.apply_report(by_id(1), &part(1), 2).unwrap(),
            Effect::Duplicate
        );
        assert_eq!(
            l.apply_report(by_id(1), &part(3), 3).unwrap(),
            Effect::Recorded
        );
        assert_eq!(state(&l, 1), "sent");
        assert!(matches!(
            l.apply_report(by_id(1), &part(2), 4).unwrap(),
            Effect::Delivered { .. }
        ));
    }

    #[test]
    fn a_wrong_delivery_token_is_an_unknown_delivery() {
        let (_d, mut l) = ledger_with(&["sent"]);
        let lookup = Lookup::Delivery { id: 1, token: "x" };
        let effect = l
            .apply_report(lookup, &report(ReportState::Delivered, None), 1)
            .unwrap();
        assert_eq!(effect, Effect::Unknown);
        assert_eq!(state(&l, 1), "sent");
    }
}
