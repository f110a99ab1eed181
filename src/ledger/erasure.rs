//! Data protection requests about one Telegram chat (SPEC §9): what is
//! stored about it (subject access) and its erasure.

use super::sql::{Conn, params};
use serde::Serialize;

use super::{DeliveryState, Ledger, LedgerError, now_ms};

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Erased {
    /// The subscriber row existed and was deleted.
    pub subscriber: bool,
    /// Telegram deliveries whose chat id was replaced by `erased:<delivery id>`.
    pub deliveries_anonymised: usize,
    /// Of those, deliveries not yet sent that will now never be.
    pub deliveries_skipped: usize,
}

/// One Telegram delivery to a chat, for a subject access export.
#[derive(Debug, Clone, Serialize)]
pub struct ChatDelivery {
    pub alert_id: String,
    pub state: DeliveryState,
    pub updated_at: String,
    pub acknowledged_at: Option<String>,
}

fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl Ledger {
    /// Every Telegram delivery addressed to `chat`, oldest first.
    pub fn deliveries_to_chat(&self, chat: &str) -> Result<Vec<ChatDelivery>, LedgerError> {
        let mut stmt = self.conn.prepare(
            "SELECT alert_id, state, updated_at, acknowledged_at FROM deliveries
             WHERE channel = 'telegram' AND address = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([chat], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (alert_id, state, updated_at, acknowledged_at) = row?;
            out.push(ChatDelivery {
                alert_id,
                state: state.parse()?,
                updated_at: ms_to_rfc3339(updated_at),
                acknowledged_at: acknowledged_at.map(ms_to_rfc3339),
            });
        }
        Ok(out)
    }

    /// `/cancellami` and `subscribers forget`: deletes the subscriber and
    /// anonymises the chat id in the delivery record. Deliveries themselves
    /// are kept (the after-action report must still add up); their address
    /// becomes `erased:<delivery id>`, which still keeps them unique.
    /// Pending ones are skipped: nobody is there to receive them any more.
    ///
    /// The chat id must not survive in the file either (SPEC §9 "erases the
    /// subscriber's data"): `secure_delete` zeroes the freed cells and pages
    /// of this transaction, and a checkpoint then moves the pages into the
    /// database and truncates the WAL, whose older frames still hold the id.
    pub fn erase_subscriber(&self, chat: &str) -> Result<Erased, LedgerError> {
        let conn = &self.conn;
        let Some(sqlite) = conn.as_sqlite() else {
            // PostgreSQL keeps the old versions of the rows until VACUUM
            // reclaims them (autovacuum, or the sysadmin's; docs/postgresql.md).
            return erase_rows(conn, chat);
        };
        sqlite.pragma_update(None, "secure_delete", "ON")?;
        let erased = erase_rows(conn, chat);
        let _ = sqlite.pragma_update(None, "secure_delete", "FAST");
        let erased = erased?;
        // Best effort: a reader in the middle of a long transaction (a `send`)
        // keeps the WAL alive until it ends; the next checkpoint removes it.
        match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        }) {
            Ok(0) => {}
            Ok(_) => tracing::warn!(
                "erasure: the WAL is in use by another process and keeps old frames until its next checkpoint"
            ),
            Err(e) => tracing::warn!(error = %e, "erasure: WAL checkpoint failed"),
        }
        Ok(erased)
    }
}

fn erase_rows(conn: &Conn, chat: &str) -> Result<Erased, LedgerError> {
    // The connection is not shared across threads; nothing else can open a
    // transaction on it meanwhile.
    let tx = conn.unchecked_transaction()?;
    let subscriber = tx.execute("DELETE FROM subscribers WHERE chat_id = ?1", [chat])? == 1;
    let deliveries_skipped = tx.execute(
        "UPDATE deliveries SET state = 'skipped', last_error = 'the recipient erased their data',
                updated_at = ?2
         WHERE channel = 'telegram' AND address = ?1 AND state = 'pending'",
        params![chat, now_ms()],
    )?;
    let deliveries_anonymised = tx.execute(
        "UPDATE deliveries SET address = 'erased:' || id,
                recipient = CASE WHEN recipient = 'subscriber:' || ?1 THEN 'subscriber:erased'
                                 ELSE recipient END
         WHERE channel = 'telegram' AND address = ?1",
        [chat],
    )?;
    // The contact registry is a copy of the contact files: it keeps no
    // erased chat id, and is rebuilt from the files at the next send (an
    // officer removes the person from the list itself).
    let in_registry = tx.execute(
        "DELETE FROM registry_addresses WHERE channel = 'telegram' AND address = ?1",
        [chat],
    )?;
    if in_registry > 0 {
        tx.execute("DELETE FROM registry_state", [])?;
    }
    tx.commit()?;
    Ok(Erased {
        subscriber,
        deliveries_anonymised,
        deliveries_skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{delivery, ledger};
    use super::Erased;

    #[test]
    fn a_subject_access_export_lists_the_chats_deliveries_with_their_state_word() {
        let (_d, l) = ledger();
        delivery(l.conn(), 1, "42", "sent");
        delivery(l.conn(), 2, "99", "sent");
        delivery(l.conn(), 3, "42", "pending");
        let rows = l.deliveries_to_chat("42").expect("export");
        assert_eq!(
            serde_json::to_value(&rows).expect("json"),
            serde_json::json!([
                { "alert_id": "a1", "state": "sent", "updated_at": "1970-01-01T00:00:00Z", "acknowledged_at": null },
                { "alert_id": "a3", "state": "pending", "updated_at": "1970-01-01T00:00:00Z", "acknowledged_at": null },
            ])
        );
    }

    #[test]
    fn erase_deletes_subscriber_and_anonymises_deliveries() {
        let (_d, l) = ledger();
        l.start_subscriber("42", "it").expect("start");
        delivery(l.conn(), 1, "42", "sent");
        delivery(l.conn(), 2, "42", "pending");
        delivery(l.conn(), 3, "99", "sent");
        let erased = l.erase_subscriber("42").expect("erase");
        assert_eq!(
            erased,
            Erased {
                subscriber: true,
                deliveries_anonymised: 2,
                deliveries_skipped: 1
            }
        );
        assert_eq!(l.subscriber("42").expect("get"), None);
        let c = l.conn();
        let left: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM deliveries WHERE address = '42' OR recipient LIKE '%42%'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(left, 0);
        let total: i64 = c
            .query_row("SELECT COUNT(*) FROM deliveries", [], |r| r.get(0))
            .expect("count");
        assert_eq!(total, 3, "deliveries are kept");
    }
}
