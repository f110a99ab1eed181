//! The tamper-evident audit trail (SPEC §11): every row carries the SHA-256
//! of the previous row's hash and its own canonical content, so an edited,
//! inserted or deleted row breaks the chain from that row on.

use super::sql::{Behavior, OptionalExtension, params};
use ring::digest::{SHA256, digest};
use serde::Serialize;

use super::{Ledger, LedgerError};

/// The hash the first row chains to.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub operator: String,
    pub host: String,
    pub command: String,
    pub alert_id: Option<String>,
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Where `audit verify` found the chain broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub row: i64,
    pub reason: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 over the previous hash and the row's fields as one JSON array
/// (serde_json writes it the same way every time: the canonical form).
#[allow(clippy::too_many_arguments)]
fn row_hash(
    prev: &str,
    id: i64,
    at: &str,
    operator: &str,
    host: &str,
    command: &str,
    alert_id: Option<&str>,
    detail: &str,
) -> String {
    let canonical = serde_json::json!([prev, id, at, operator, host, command, alert_id, detail]);
    hex(digest(&SHA256, canonical.to_string().as_bytes()).as_ref())
}

impl Ledger {
    /// Records who did what, from where. Every state-changing command calls
    /// it. The row is chained to the previous one inside one immediate
    /// transaction, so two processes never chain to the same row.
    pub fn audit(
        &mut self,
        actor: &crate::Actor,
        command: &str,
        alert_id: Option<&str>,
        detail: &serde_json::Value,
    ) -> Result<(), LedgerError> {
        let tx = self.conn.transaction_with_behavior(Behavior::Immediate)?;
        let prev: String = tx
            .query_row("SELECT hash FROM audit ORDER BY id DESC LIMIT 1", [], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()?
            .flatten()
            .unwrap_or_else(|| GENESIS.to_owned());
        let id: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM audit", [], |r| {
            r.get(0)
        })?;
        let at = chrono::Utc::now().to_rfc3339();
        let detail = detail.to_string();
        let hash = row_hash(
            &prev,
            id,
            &at,
            &actor.operator,
            &actor.host,
            command,
            alert_id,
            &detail,
        );
        tx.execute(
            "INSERT INTO audit (id, at, operator, host, command, alert_id, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                at,
                actor.operator,
                actor.host,
                command,
                alert_id,
                detail,
                prev,
                hash
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Chains rows written before the audit trail had hashes (migration 2),
    /// in id order. Runs at open; a no-op once every row has its hash.
    pub(super) fn chain_legacy_audit_rows(&mut self) -> Result<(), LedgerError> {
        // Every open asks, so ask with a read: no write lock (a live send's
        // writer holds it often) unless there is something to chain.
        let unchained = |conn: &super::sql::Conn| -> Result<bool, LedgerError> {
            Ok(conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM audit WHERE hash IS NULL)",
                [],
                |r| r.get(0),
            )?)
        };
        if !unchained(&self.conn)? {
            return Ok(());
        }
        let tx = self.conn.transaction_with_behavior(Behavior::Immediate)?;
        if !unchained(&tx)? {
            return Ok(()); // another process chained them meanwhile
        }
        let rows = {
            let mut stmt = tx.prepare(
                "SELECT id, at, operator, host, command, alert_id, detail, hash FROM audit ORDER BY id",
            )?;
            stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        let mut prev = GENESIS.to_owned();
        for (id, at, operator, host, command, alert_id, detail, hash) in rows {
            let h = match hash {
                Some(h) => h,
                None => {
                    let h = row_hash(
                        &prev,
                        id,
                        &at,
                        &operator,
                        &host,
                        &command,
                        alert_id.as_deref(),
                        &detail,
                    );
                    tx.execute(
                        "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE id = ?1",
                        params![id, prev, h],
                    )?;
                    h
                }
            };
            prev = h;
        }
        tx.commit()?;
        Ok(())
    }

    /// The audit rows, oldest first, optionally of one alert (and of the
    /// follow-ups that name it).
    pub fn audit_rows(&self, alert_id: Option<&str>) -> Result<Vec<AuditRow>, LedgerError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at, operator, host, command, alert_id, detail, prev_hash, hash FROM audit
             WHERE CAST(?1 AS text) IS NULL OR alert_id = CAST(?1 AS text)
                OR alert_id IN (SELECT id FROM alerts WHERE thread_id =
                                (SELECT thread_id FROM alerts WHERE id = ?1))
             ORDER BY id",
        )?;
        let rows = stmt
            .query_map([alert_id], |r| {
                Ok(AuditRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    operator: r.get(2)?,
                    host: r.get(3)?,
                    command: r.get(4)?,
                    alert_id: r.get(5)?,
                    detail: serde_json::from_str(&r.get::<_, String>(6)?)
                        .unwrap_or(serde_json::Value::Null),
                    prev_hash: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                    hash: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Recomputes the chain; the first row that does not match, if any.
    pub fn verify_audit(&self) -> Result<Option<Break>, LedgerError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at, operator, host, command, alert_id, detail, prev_hash, hash
             FROM audit ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut prev = GENESIS.to_owned();
        let mut expected_id: Option<i64> = None;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let stored_prev: Option<String> = r.get(7)?;
            let stored: Option<String> = r.get(8)?;
            if let Some(e) = expected_id
                && id != e
            {
                return Ok(Some(Break {
                    row: id,
                    reason: format!("row {e} is missing before it"),
                }));
            }
            if stored_prev.as_deref() != Some(prev.as_str()) {
                return Ok(Some(Break {
                    row: id,
                    reason: "it does not chain to the row before it".into(),
                }));
            }
            let computed = row_hash(
                &prev,
                id,
                &r.get::<_, String>(1)?,
                &r.get::<_, String>(2)?,
                &r.get::<_, String>(3)?,
                &r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?.as_deref(),
                &r.get::<_, String>(6)?,
            );
            if stored.as_deref() != Some(computed.as_str()) {
                return Ok(Some(Break {
                    row: id,
                    reason: "its content does not match its hash".into(),
                }));
            }
            prev = computed;
            expected_id = Some(id + 1);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = Ledger::open(dir.path().join("a.db")).expect("open");
        (dir, ledger)
    }

    fn actor() -> crate::Actor {
        crate::Actor {
            operator: "rossi".into(),
            host: "pc1".into(),
        }
    }

    #[test]
    fn a_fresh_chain_verifies() {
        let (_d, mut l) = ledger();
        for i in 0..3 {
            l.audit(&actor(), "send", Some("A"), &serde_json::json!({ "n": i }))
                .expect("audit");
        }
        assert_eq!(l.verify_audit().expect("verify"), None);
        let rows = l.audit_rows(None).expect("rows");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].prev_hash, rows[0].hash);
    }

    #[test]
    fn an_edited_row_breaks_the_chain_at_that_row() {
        let (_d, mut l) = ledger();
        for _ in 0..3 {
            l.audit(&actor(), "send", None, &serde_json::json!({}))
                .expect("audit");
        }
        l.conn
            .execute("UPDATE audit SET operator = 'bianchi' WHERE id = 2", [])
            .expect("tamper");
        let broken = l.verify_audit().expect("verify").expect("a break");
        assert_eq!(broken.row, 2);
    }

    #[test]
    fn a_deleted_row_is_found() {
        let (_d, mut l) = ledger();
        for _ in 0..3 {
            l.audit(&actor(), "send", None, &serde_json::json!({}))
                .expect("audit");
        }
        l.conn
            .execute("DELETE FROM audit WHERE id = 2", [])
            .expect("tamper");
        assert_eq!(l.verify_audit().expect("verify").map(|b| b.row), Some(3));
    }

    #[test]
    fn rows_from_before_the_chain_are_chained_at_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.db");
        {
            let mut l = Ledger::open(&path).expect("open");
            l.audit(&actor(), "send", None, &serde_json::json!({}))
                .expect("audit");
            l.conn
                .execute_batch(
                    "INSERT INTO audit (at, operator, host, command) VALUES ('t', 'o', 'h', 'old');
                     UPDATE audit SET prev_hash = NULL, hash = NULL;",
                )
                .expect("legacy rows");
        }
        let l = Ledger::open(&path).expect("reopen");
        assert_eq!(l.verify_audit().expect("verify"), None);
    }
}
