//! Read side of the ledger: alerts, per-channel counts, delivery listings.

use std::collections::BTreeMap;

use super::sql::{OptionalExtension, Row, params};
use serde::Serialize;

use super::{AlertState, Ledger, LedgerError};
use crate::domain::{CapStatus, MsgType};

#[derive(Debug, Clone, Serialize)]
pub struct AlertRow {
    pub id: String,
    pub template: String,
    pub status: CapStatus,
    pub msg_type: MsgType,
    pub state: AlertState,
    pub created_at: String,
    pub operator: String,
    pub host: String,
    pub headline: String,
    pub expires_at: Option<String>,
    pub settled_at: Option<String>,
    pub references: Vec<String>,
    pub channels: Vec<String>,
    pub audience: serde_json::Value,
    pub variables: serde_json::Value,
    pub skipped_rows: Vec<String>,
    pub thread_id: String,
    /// Channel id → transport kind when the alert was planned.
    pub transports: BTreeMap<String, String>,
    pub creator: String,
    pub approval_deadline: Option<String>,
    pub decided_by: Option<String>,
    #[serde(skip)]
    pub idem_key: Option<String>,
    #[serde(skip)]
    pub fingerprint: Option<String>,
    #[serde(skip)]
    pub rendered: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ChannelCounts {
    pub total: u64,
    pub pending: u64,
    pub sending: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub skipped: u64,
    pub acknowledged: u64,
}

impl ChannelCounts {
    pub fn unsettled(&self) -> u64 {
        self.pending + self.sending
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub channel: String,
    pub address: String,
    pub recipient: Option<String>,
    pub language: String,
    pub state: String,
    pub attempts: u32,
    pub provider_id: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: String,
    pub acknowledged_at: Option<String>,
}

const ALERT_COLUMNS: &str =
    "id, template, status, msg_type, state, created_at, operator, host, headline,
     expires_at, settled_at, refs, channels, audience, variables, skipped_rows, rendered,
     thread_id, transports, creator, approval_deadline, decided_by, idem_key, fingerprint";

fn json_list(s: String) -> Vec<String> {
    serde_json::from_str(&s).unwrap_or_default()
}

/// A text column holding one of the domain's values.
fn parsed<T>(r: &Row<'_>, idx: usize) -> super::sql::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    r.get::<_, String>(idx)?
        .parse()
        .map_err(|e: T::Err| super::sql::conversion_error(idx, e.to_string()))
}

fn alert_from_row(r: &Row<'_>) -> super::sql::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        template: r.get(1)?,
        status: parsed(r, 2)?,
        msg_type: parsed(r, 3)?,
        state: parsed(r, 4)?,
        created_at: r.get(5)?,
        operator: r.get(6)?,
        host: r.get(7)?,
        headline: r.get(8)?,
        expires_at: r.get(9)?,
        settled_at: r.get(10)?,
        references: json_list(r.get(11)?),
        channels: json_list(r.get(12)?),
        audience: serde_json::from_str(&r.get::<_, String>(13)?).unwrap_or_default(),
        variables: serde_json::from_str(&r.get::<_, String>(14)?).unwrap_or_default(),
        skipped_rows: json_list(r.get(15)?),
        rendered: r.get(16)?,
        thread_id: r.get(17)?,
        transports: serde_json::from_str(&r.get::<_, String>(18)?).unwrap_or_default(),
        creator: r.get(19)?,
        approval_deadline: r.get(20)?,
        decided_by: r.get(21)?,
        idem_key: r.get(22)?,
        fingerprint: r.get(23)?,
    })
}

fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl Ledger {
    /// One alert by id, or the latest when `id` is `None`.
    pub fn alert(&self, id: Option<&str>) -> Result<AlertRow, LedgerError> {
        let row = match id {
            Some(id) => self
                .conn
                .query_row(
                    &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                    [id],
                    alert_from_row,
                )
                .optional()?
                .ok_or_else(|| LedgerError::UnknownAlert(id.to_owned()))?,
            None => self
                .conn
                .query_row(
                    &format!("SELECT {ALERT_COLUMNS} FROM alerts ORDER BY rowid DESC LIMIT 1"),
                    [],
                    alert_from_row,
                )
                .optional()?
                .ok_or(LedgerError::NoAlerts)?,
        };
        Ok(row)
    }

    /// Alerts created at or after `since` (RFC 3339), newest first.
    pub fn alerts(&self, since: Option<&str>) -> Result<Vec<AlertRow>, LedgerError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE CAST(?1 AS text) IS NULL OR created_at >= CAST(?1 AS text) ORDER BY rowid DESC"
        ))?;
        let rows = stmt
            .query_map([since], alert_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Per-channel counts by state, with acknowledgements.
    pub fn counts(&self, alert_id: &str) -> Result<BTreeMap<String, ChannelCounts>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT channel, state, COUNT(*), COUNT(acknowledged_at) FROM deliveries
             WHERE alert_id = ?1 GROUP BY channel, state",
        )?;
        let mut out: BTreeMap<String, ChannelCounts> = BTreeMap::new();
        let rows = stmt.query_map([alert_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? as u64,
                r.get::<_, i64>(3)? as u64,
            ))
        })?;
        for row in rows {
            let (channel, state, n, acked) = row?;
            let c = out.entry(channel).or_default();
            c.total += n;
            c.acknowledged += acked;
            match state.parse::<super::DeliveryState>()? {
                super::DeliveryState::Pending => c.pending += n,
                super::DeliveryState::Sending => c.sending += n,
                super::DeliveryState::Sent => c.sent += n,
                super::DeliveryState::Delivered => c.delivered += n,
                super::DeliveryState::Failed => c.failed += n,
                super::DeliveryState::Skipped => c.skipped += n,
            }
        }
        Ok(out)
    }

    /// Streams the deliveries of an alert in id order.
    pub fn for_each_delivery(
        &self,
        alert_id: &str,
        only_failed: bool,
        mut visit: impl FnMut(DeliveryRow) -> std::io::Result<()>,
    ) -> Result<(), LedgerError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, channel, address, recipient, language, state, attempts, provider_id,
                    last_error, updated_at, acknowledged_at
             FROM deliveries WHERE alert_id = ?1 AND (?2 = 0 OR state = 'failed') ORDER BY id",
        )?;
        let mut rows = stmt.query(params![alert_id, only_failed as i64])?;
        while let Some(r) = rows.next()? {
            let row = DeliveryRow {
                id: r.get(0)?,
                channel: r.get(1)?,
                address: r.get(2)?,
                recipient: r.get(3)?,
                language: r.get(4)?,
                state: r.get(5)?,
                attempts: r.get(6)?,
                provider_id: r.get(7)?,
                last_error: r.get(8)?,
                updated_at: ms_to_rfc3339(r.get(9)?),
                acknowledged_at: r.get::<_, Option<i64>>(10)?.map(ms_to_rfc3339),
            };
            if let Err(e) = visit(row) {
                // A closed pipe (`| head`) ends the listing quietly.
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                return Err(LedgerError::Corrupt(format!("cannot write output: {e}")));
            }
        }
        Ok(())
    }
}
