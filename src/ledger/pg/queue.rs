//! The hot path on PostgreSQL (SPEC §18): claims under an expiring
//! per-delivery lease, outcomes written only by the lease's owner, and the
//! take-over of claims whose lease expired (a dead or stuck worker).
//!
//! - A claim takes due `pending` deliveries and `sending` ones whose lease
//!   has expired, with `FOR UPDATE SKIP LOCKED`: two workers claiming at
//!   once never get the same delivery, and neither waits for the other.
//!   The lease is measured by the database's clock (`now()`), never by a
//!   worker's.
//! - A settle updates a delivery only `WHERE state = 'sending' AND
//!   lease_owner = <worker>`, in the same statement that writes it: a
//!   worker whose claim was taken over, or whose delivery was completed
//!   meanwhile, changes nothing (the bug River's queue fixed in 2026: a
//!   rescue overwrote a just-completed job). The attempt row is written by
//!   the same statement, only for the deliveries it updated.

use std::collections::HashSet;

use deadpool_postgres::Transaction;

use super::{PgError, PgLedger};
use crate::domain::{ChannelId, Recipient};
use crate::ledger::{AlertState, Backlog, Claimed, DeliveryState, Halt, Outcome, Record, now_ms};

/// A delivery a worker now holds, and whose claim it took over if any.
#[derive(Debug, Clone)]
pub struct Claim {
    pub delivery: Claimed,
    /// The worker whose lease expired on it (its outcome is unknown: it is
    /// sent again, as §7 prefers a duplicate to a loss).
    pub taken_over_from: Option<String>,
}

/// What a settle did, one delivery id per record in the batch's order:
/// outcomes written, and outcomes refused because the worker no longer held
/// the delivery (taken over, or already final) — the engine logs those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    pub applied: Vec<i64>,
    pub stale: Vec<i64>,
}

const CLAIM: &str = "
    WITH picked AS (
        SELECT id, state AS was, lease_owner AS was_owner
        FROM deliveries
        WHERE alert_id = $1 AND channel = $2
          AND ((state = 'pending' AND next_attempt_at <= $3)
               OR (state = 'sending' AND lease_until < now()))
        ORDER BY id
        LIMIT $4
        FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries d
    SET state = 'sending', lease_owner = $5,
        lease_until = now() + $6::float8 * interval '1 millisecond', updated_at = $3,
        last_error = CASE WHEN p.was = 'sending'
                          THEN 'lease of ' || p.was_owner || ' expired: outcome unknown, re-sent'
                          ELSE d.last_error END
    FROM picked p
    WHERE d.id = p.id
    RETURNING d.id, d.address, d.recipient, d.language, d.attempts, d.token,
              CASE WHEN p.was = 'sending' THEN p.was_owner END";

const SETTLE: &str = "
    WITH b AS (
        SELECT * FROM unnest($2::bigint[], $3::text[], $4::int[], $5::bigint[], $6::text[],
                             $7::text[], $8::bigint[], $9::text[])
                 AS b(id, state, counted, next, provider, error, at, outcome)
    ), done AS (
        UPDATE deliveries d
        SET state = b.state, attempts = d.attempts + b.counted, next_attempt_at = b.next,
            provider_id = COALESCE(b.provider, d.provider_id), last_error = b.error,
            updated_at = b.at, lease_owner = NULL, lease_until = NULL
        FROM b
        WHERE d.id = b.id AND d.state = 'sending' AND d.lease_owner = $1
        RETURNING d.id
    )
    INSERT INTO attempts (delivery_id, at, outcome, provider_id, detail)
    SELECT b.id, b.at, b.outcome, b.provider, b.error FROM b JOIN done ON done.id = b.id
    RETURNING delivery_id";

/// A record as the columns it writes: (state, counted, next, provider,
/// error, outcome word).
fn columns(
    o: &Outcome,
) -> (
    DeliveryState,
    i32,
    i64,
    Option<&str>,
    Option<&str>,
    &'static str,
) {
    use DeliveryState as S;
    match o {
        Outcome::Sent { provider_id } => (S::Sent, 1, 0, provider_id.as_deref(), None, "sent"),
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
        Outcome::Failed { error } => (S::Failed, 1, 0, None, Some(error.as_str()), "permanent"),
        Outcome::Released { reason } => (
            S::Pending,
            0,
            0,
            None,
            Some(reason.as_str()),
            "not-attempted",
        ),
    }
}

/// Writes one batch in which no delivery appears twice.
async fn settle_distinct(
    tx: &Transaction<'_>,
    worker: &str,
    batch: &[&Record],
) -> Result<Vec<i64>, PgError> {
    let mut ids = Vec::with_capacity(batch.len());
    let mut states = Vec::with_capacity(batch.len());
    let mut counted = Vec::with_capacity(batch.len());
    let mut next = Vec::with_capacity(batch.len());
    let mut provider = Vec::with_capacity(batch.len());
    let mut error = Vec::with_capacity(batch.len());
    let mut at = Vec::with_capacity(batch.len());
    let mut outcome = Vec::with_capacity(batch.len());
    for r in batch {
        let (s, c, n, p, e, o) = columns(&r.outcome);
        ids.push(r.delivery_id);
        states.push(s.as_str());
        counted.push(c);
        next.push(n);
        provider.push(p);
        error.push(e);
        at.push(r.at_ms);
        outcome.push(o);
    }
    let rows = tx
        .query(
            SETTLE,
            &[
                &worker, &ids, &states, &counted, &next, &provider, &error, &at, &outcome,
            ],
        )
        .await?;
    rows.iter()
        .map(|r| r.try_get::<_, i64>(0).map_err(PgError::from))
        .collect()
}

/// Writes one run of distinct deliveries and sorts its records into
/// applied and stale, in the batch's order.
async fn settle_run(
    tx: &Transaction<'_>,
    worker: &str,
    run: &[&Record],
    settled: &mut Settled,
) -> Result<(), PgError> {
    let done: HashSet<i64> = settle_distinct(tx, worker, run)
        .await?
        .into_iter()
        .collect();
    for r in run {
        if done.contains(&r.delivery_id) {
            settled.applied.push(r.delivery_id);
        } else {
            settled.stale.push(r.delivery_id);
        }
    }
    Ok(())
}

impl PgLedger {
    /// Up to `limit` deliveries of one channel for `worker`, lowest id
    /// first: due pending ones and sending ones whose lease expired. Only
    /// while the alert is `sending`, read under a share lock in the same
    /// transaction, so a cancel or a pause waits for a claim in progress
    /// and every later claim sees it (SPEC §11 "cancel wins").
    pub async fn claim(
        &self,
        alert_id: &str,
        worker: &str,
        channel: ChannelId,
        limit: usize,
    ) -> Result<Result<Vec<Claim>, Halt>, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT state FROM alerts WHERE id = $1 FOR SHARE",
                &[&alert_id],
            )
            .await?;
        let Some(row) = row else {
            return Err(PgError::UnknownAlert(alert_id.to_owned()));
        };
        let state: AlertState = row.try_get::<_, &str>(0)?.parse()?;
        if state != AlertState::Sending {
            return Ok(Err(Halt::State(state)));
        }
        let lease_ms = self.lease.as_secs_f64() * 1000.0;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = tx
            .query(
                CLAIM,
                &[
                    &alert_id,
                    &channel.as_str(),
                    &now_ms(),
                    &limit,
                    &worker,
                    &lease_ms,
                ],
            )
            .await?;
        tx.commit().await?;
        let mut claims = rows
            .iter()
            .map(|r| {
                let attempts: i32 = r.try_get(4)?;
                Ok(Claim {
                    delivery: Claimed {
                        id: r.try_get(0)?,
                        address: r.try_get(1)?,
                        recipient: Recipient::from_column(r.try_get::<_, Option<&str>>(2)?),
                        language: r.try_get(3)?,
                        attempts: u32::try_from(attempts).unwrap_or(0),
                        token: r.try_get(5)?,
                    },
                    taken_over_from: r.try_get(6)?,
                })
            })
            .collect::<Result<Vec<_>, PgError>>()?;
        claims.sort_by_key(|c| c.delivery.id);
        Ok(Ok(claims))
    }

    /// Writes a batch of `worker`'s outcomes in one transaction. An outcome
    /// of a delivery the worker no longer holds changes nothing and is
    /// returned as stale.
    pub async fn settle(&self, worker: &str, batch: &[Record]) -> Result<Settled, PgError> {
        if batch.is_empty() {
            return Ok(Settled::default());
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut settled = Settled::default();
        // One statement per run of distinct deliveries: an UPDATE … FROM
        // applies one arbitrary row per target, so a delivery recorded twice
        // in a batch is written in order, the second against the first.
        let mut run: Vec<&Record> = Vec::new();
        let mut seen = HashSet::new();
        for r in batch {
            if !seen.insert(r.delivery_id) {
                settle_run(&tx, worker, &run, &mut settled).await?;
                run.clear();
                seen.clear();
                seen.insert(r.delivery_id);
            }
            run.push(r);
        }
        settle_run(&tx, worker, &run, &mut settled).await?;
        tx.commit().await?;
        Ok(settled)
    }

    /// Extends the lease of every delivery `worker` still holds (a worker
    /// renews well within the lease while it sends). A delivery taken over
    /// has another owner and is not touched. Returns how many it holds.
    pub async fn renew(&self, worker: &str) -> Result<u64, PgError> {
        let client = self.pool.get().await?;
        let lease_ms = self.lease.as_secs_f64() * 1000.0;
        Ok(client
            .execute(
                "UPDATE deliveries SET lease_until = now() + $2::float8 * interval '1 millisecond'
                 WHERE state = 'sending' AND lease_owner = $1",
                &[&worker, &lease_ms],
            )
            .await?)
    }

    /// Deliveries of one channel not final yet (a claim of any worker
    /// counts), when the next can be claimed — a pending one's next
    /// attempt, or the end of a claim's lease, when it can be taken over —
    /// and whether more may be planned. A lane with nothing to claim waits
    /// for that, instead of polling while other workers hold the rest.
    pub async fn unsettled(&self, alert_id: &str, channel: ChannelId) -> Result<Backlog, PgError> {
        let client = self.pool.get().await?;
        let r = client
            .query_one(
                "SELECT COUNT(*),
                        LEAST(MIN(next_attempt_at) FILTER (WHERE state = 'pending'),
                              (MIN(extract(epoch FROM GREATEST(lease_until, to_timestamp(0))) * 1000)
                                   FILTER (WHERE state = 'sending'))::bigint),
                        EXISTS (SELECT 1 FROM plan_pending WHERE alert_id = $1)
                 FROM deliveries
                 WHERE alert_id = $1 AND channel = $2 AND state IN ('pending', 'sending')
                   AND held_until IS NULL",
                &[&alert_id, &channel.as_str()],
            )
            .await?;
        Ok(Backlog {
            left: u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or(0),
            next_due: r.try_get(1)?,
            planning: r.try_get(2)?,
        })
    }

    /// Marks the alert settled when none of its deliveries is unfinished,
    /// in one statement (any worker may call it; one wins).
    pub async fn settle_if_done(&self, alert_id: &str) -> Result<bool, PgError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE alerts SET state = 'settled', settled_at = now()
                 WHERE id = $1 AND state = 'sending'
                   AND NOT EXISTS (SELECT 1 FROM deliveries
                                   WHERE alert_id = $1 AND state IN ('pending', 'sending'))
                   AND NOT EXISTS (SELECT 1 FROM plan_pending WHERE alert_id = $1)",
                &[&alert_id],
            )
            .await?;
        Ok(n == 1)
    }
}
