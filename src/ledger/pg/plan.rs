//! The fan-out plan on PostgreSQL: the alert row and its deliveries in one
//! transaction, committed before anything is claimed (SPEC §7, §11; with
//! `synchronous_commit = on` and a synchronous standby the commit is on two
//! sites). Unique on (alert, channel, address): an address twice gets one
//! delivery. Deliveries are inserted in batches (one statement each, in
//! the order given, which is the order they are claimed in).

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;

use super::{PgError, PgLedger};
use crate::domain::{ChannelId, Recipient};
use crate::ledger::{NewAlert, now_ms};

/// Rows per INSERT statement.
const BATCH: usize = 1_000;

/// One delivery to plan.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub channel: ChannelId,
    pub address: String,
    pub recipient: Recipient,
    pub language: String,
    /// The recipient is not in `[drill] audience`.
    pub outside_drill: bool,
}

fn timestamp(what: &str, value: &str) -> Result<DateTime<Utc>, PgError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| PgError::Corrupt(format!("alert {what} `{value}` is not RFC 3339 ({e})")))
}

fn optional_timestamp(what: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, PgError> {
    value.map(|v| timestamp(what, v)).transpose()
}

async fn insert_alert(tx: &Transaction<'_>, a: &NewAlert) -> Result<(), PgError> {
    let channels: Vec<&str> = a.channels.iter().map(|c| c.as_str()).collect();
    let channels = serde_json::json!(channels);
    let refs = serde_json::json!(a.references);
    let created = timestamp("created_at", &a.created_at)?;
    let expires = optional_timestamp("expires_at", a.expires_at.as_deref())?;
    let deadline = optional_timestamp("approval_deadline", a.approval_deadline.as_deref())?;
    tx.execute(
        "INSERT INTO alerts (id, idem_key, template, variables, status, msg_type, refs, audience,
                             channels, rendered, headline, created_at, expires_at, operator, host,
                             fingerprint, thread_id, transports, state, creator, approval_deadline)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                 $16, $17, $18, $19, $20, $21)",
        &[
            &a.id,
            &a.idem_key,
            &a.template,
            &a.variables,
            &a.status.as_str(),
            &a.msg_type.as_str(),
            &refs,
            &a.audience,
            &channels,
            &a.rendered,
            &a.headline,
            &created,
            &expires,
            &a.operator,
            &a.host,
            &a.fingerprint,
            &a.thread_id,
            &a.transports,
            &a.state.as_str(),
            &a.creator,
            &deadline,
        ],
    )
    .await?;
    Ok(())
}

async fn insert_deliveries(
    tx: &Transaction<'_>,
    alert_id: &str,
    now: i64,
    rows: &[NewDelivery],
) -> Result<usize, PgError> {
    let insert = tx
        .prepare(
            "INSERT INTO deliveries (alert_id, channel, address, recipient, language, state,
                                     updated_at, token, outside_drill)
             SELECT $1, u.channel, u.address, u.recipient, u.language, 'pending', $2, u.token, u.outside
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[])
                  WITH ORDINALITY AS u(channel, address, recipient, language, token, outside, n)
             ORDER BY u.n
             ON CONFLICT (alert_id, channel, address) DO NOTHING",
        )
        .await?;
    let mut added = 0;
    for chunk in rows.chunks(BATCH) {
        let channel: Vec<&str> = chunk.iter().map(|d| d.channel.as_str()).collect();
        let address: Vec<&str> = chunk.iter().map(|d| d.address.as_str()).collect();
        let recipient: Vec<Option<String>> =
            chunk.iter().map(|d| d.recipient.to_column()).collect();
        let language: Vec<&str> = chunk.iter().map(|d| d.language.as_str()).collect();
        let token: Vec<String> = chunk
            .iter()
            .map(|_| format!("{:032x}", rand::random::<u128>()))
            .collect();
        let outside: Vec<bool> = chunk.iter().map(|d| d.outside_drill).collect();
        let n = tx
            .execute(
                &insert,
                &[
                    &alert_id, &now, &channel, &address, &recipient, &language, &token, &outside,
                ],
            )
            .await?;
        added += n as usize;
    }
    Ok(added)
}

impl PgLedger {
    /// Writes the alert and its deliveries in one transaction; nothing at
    /// all is written when any of it fails. Returns how many deliveries
    /// were added (an address given twice counts once).
    pub async fn plan(&self, alert: &NewAlert, rows: &[NewDelivery]) -> Result<usize, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        insert_alert(&tx, alert).await?;
        let added = insert_deliveries(&tx, &alert.id, now_ms(), rows).await?;
        tx.commit().await?;
        Ok(added)
    }
}
