//! The fan-out plan: the alert row and every delivery row, written in one
//! transaction before the first message leaves. Unique on (alert, channel,
//! address), so an address in two lists gets one message. The ledger's
//! connection commits with `synchronous = FULL`: the plan is on disk before
//! the first message leaves (SPEC §11).

use super::sql::{Stmt, Tx, params};

use super::{AlertState, Ledger, LedgerError, now_ms};
use crate::domain::{CapStatus, ChannelId, MsgType, Recipient};

pub struct NewAlert {
    pub id: String,
    pub idem_key: Option<String>,
    /// SHA-256 of what `idem_key` stands for (template, variables, status,
    /// audience, channels).
    pub fingerprint: Option<String>,
    /// The thread's first message (the alert's own id for a new alert).
    pub thread_id: String,
    /// Channel id → transport kind at planning (`outbox`, `kannel`…).
    pub transports: serde_json::Value,
    /// `sending`, or `awaiting_approval` under the two-person rule.
    pub state: AlertState,
    /// The OS user who created it (never `--operator`).
    pub creator: String,
    pub approval_deadline: Option<String>,
    pub template: String,
    pub variables: serde_json::Value,
    pub status: CapStatus,
    pub msg_type: MsgType,
    pub references: Vec<String>,
    pub audience: serde_json::Value,
    pub channels: Vec<ChannelId>,
    pub rendered: serde_json::Value,
    pub headline: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub operator: String,
    pub host: String,
}

/// Adds delivery rows inside the plan's transaction.
pub struct Planner<'t> {
    conn: &'t super::sql::Conn,
    insert: Stmt<'t>,
    alert_id: String,
    now: i64,
    pub skipped_rows: Vec<String>,
}

impl<'t> Planner<'t> {
    pub(super) fn alert_id(&self) -> &str {
        &self.alert_id
    }

    pub(super) fn now(&self) -> i64 {
        self.now
    }

    /// The plan's transaction, to read what the plan depends on.
    pub(super) fn conn(&self) -> &'t super::sql::Conn {
        self.conn
    }

    /// Adds one delivery; returns false when (channel, address) was already
    /// planned for this alert. `outside_drill`: the recipient is not in
    /// `[drill] audience` (acting on this delivery needs confirmation).
    pub fn add(
        &mut self,
        channel: ChannelId,
        address: &str,
        recipient: &Recipient,
        language: &str,
        outside_drill: bool,
    ) -> Result<bool, LedgerError> {
        let token = format!("{:032x}", rand::random::<u128>());
        let n = self.insert.execute(params![
            self.alert_id,
            channel.as_str(),
            address,
            recipient.to_column(),
            language,
            self.now,
            token,
            outside_drill
        ])?;
        Ok(n == 1)
    }
}

impl Ledger {
    /// Writes the alert and calls `fill` to add its deliveries, all in one
    /// transaction. If `fill` fails nothing at all is written.
    pub fn plan<E: From<LedgerError>>(
        &mut self,
        alert: &NewAlert,
        fill: impl FnOnce(&mut Planner<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let tx = self
            .conn
            .transaction_with_behavior(super::sql::Behavior::Immediate)
            .map_err(LedgerError::from)?;
        insert_alert(&tx, alert)?;
        let skipped = {
            let insert = tx
                .prepare(
                    "INSERT INTO deliveries (alert_id, channel, address, recipient, language, state, updated_at, token, outside_drill)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8)
                     ON CONFLICT (alert_id, channel, address) DO NOTHING",
                )
                .map_err(LedgerError::from)?;
            let mut planner = Planner {
                conn: &tx,
                insert,
                alert_id: alert.id.clone(),
                now: now_ms(),
                skipped_rows: Vec::new(),
            };
            fill(&mut planner)?;
            planner.skipped_rows
        };
        if !skipped.is_empty() {
            tx.execute(
                "UPDATE alerts SET skipped_rows = ?2 WHERE id = ?1",
                params![
                    alert.id,
                    serde_json::to_string(&skipped).unwrap_or_default()
                ],
            )
            .map_err(LedgerError::from)?;
        }
        tx.commit().map_err(LedgerError::from)?;
        Ok(())
    }
}

fn insert_alert(tx: &Tx<'_>, a: &NewAlert) -> Result<(), LedgerError> {
    let channels: Vec<&str> = a.channels.iter().map(|c| c.as_str()).collect();
    tx.execute(
        "INSERT INTO alerts (id, idem_key, template, variables, status, msg_type, refs, audience,
                             channels, rendered, headline, created_at, expires_at, operator, host,
                             fingerprint, thread_id, transports, state, creator, approval_deadline)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                 ?16, ?17, ?18, ?19, ?20, ?21)",
        params![
            a.id,
            a.idem_key,
            a.template,
            a.variables.to_string(),
            a.status.as_str(),
            a.msg_type.as_str(),
            serde_json::to_string(&a.references).unwrap_or_else(|_| "[]".into()),
            a.audience.to_string(),
            serde_json::to_string(&channels).unwrap_or_else(|_| "[]".into()),
            a.rendered.to_string(),
            a.headline,
            a.created_at,
            a.expires_at,
            a.operator,
            a.host,
            a.fingerprint,
            a.thread_id,
            a.transports.to_string(),
            a.state.as_str(),
            a.creator,
            a.approval_deadline
        ],
    )?;
    Ok(())
}
