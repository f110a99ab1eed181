//! What the bot keeps in the ledger's database: subscribers (chat id, zones,
//! language, active) and acknowledgements on deliveries. Only the chat id is
//! stored about a person, never their name: it is all the service needs.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::ledger::{LedgerError, now_ms};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Subscriber {
    pub chat_id: String,
    pub zones: Vec<String>,
    pub language: String,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn split_zones(s: &str) -> Vec<String> {
    s.split(';')
        .filter(|z| !z.is_empty())
        .map(str::to_owned)
        .collect()
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Subscriber> {
    Ok(Subscriber {
        chat_id: r.get(0)?,
        zones: split_zones(&r.get::<_, String>(1)?),
        language: r.get(2)?,
        active: r.get::<_, i64>(3)? != 0,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

const COLUMNS: &str = "chat_id, zones, language, active, created_at, updated_at";

pub fn get(conn: &Connection, chat: &str) -> Result<Option<Subscriber>, LedgerError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM subscribers WHERE chat_id = ?1"),
            [chat],
            from_row,
        )
        .optional()?)
}

/// Every subscriber, active or not, in chat id order.
pub fn list(conn: &Connection) -> Result<Vec<Subscriber>, LedgerError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM subscribers ORDER BY chat_id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// `/start`: creates the subscriber, or makes an existing one active again.
pub fn start(conn: &Connection, chat: &str, language: &str) -> Result<Subscriber, LedgerError> {
    let t = now();
    conn.execute(
        "INSERT INTO subscribers (chat_id, zones, language, active, created_at, updated_at)
         VALUES (?1, '', ?2, 1, ?3, ?3)
         ON CONFLICT (chat_id) DO UPDATE SET active = 1, updated_at = ?3",
        params![chat, language, t],
    )?;
    get(conn, chat)?.ok_or_else(|| LedgerError::Corrupt("subscriber vanished after insert".into()))
}

/// Adds the zone if missing, removes it if present; returns the new zones.
pub fn toggle_zone(
    conn: &Connection,
    chat: &str,
    zone: &str,
) -> Result<Option<Vec<String>>, LedgerError> {
    let Some(s) = get(conn, chat)? else {
        return Ok(None);
    };
    let mut zones = s.zones;
    if let Some(i) = zones.iter().position(|z| z == zone) {
        zones.remove(i);
    } else {
        zones.push(zone.to_owned());
        zones.sort();
    }
    conn.execute(
        "UPDATE subscribers SET zones = ?2, updated_at = ?3 WHERE chat_id = ?1",
        params![chat, zones.join(";"), now()],
    )?;
    Ok(Some(zones))
}

pub fn set_language(conn: &Connection, chat: &str, language: &str) -> Result<bool, LedgerError> {
    Ok(conn.execute(
        "UPDATE subscribers SET language = ?2, updated_at = ?3 WHERE chat_id = ?1",
        params![chat, language, now()],
    )? == 1)
}

/// `/stop`: no more alerts; the row stays until `/cancellami`.
pub fn stop(conn: &Connection, chat: &str) -> Result<bool, LedgerError> {
    Ok(conn.execute(
        "UPDATE subscribers SET active = 0, updated_at = ?2 WHERE chat_id = ?1 AND active = 1",
        params![chat, now()],
    )? == 1)
}

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

/// `/cancellami` and `subscribers forget`: deletes the subscriber and
/// anonymises the chat id in the delivery record. Deliveries themselves are
/// kept (the after-action report must still add up); their address becomes
/// `erased:<delivery id>`, which still keeps them unique. Pending ones are
/// skipped: nobody is there to receive them any more.
///
/// The chat id must not survive in the file either (SPEC §9 "erases the
/// subscriber's data"): `secure_delete` zeroes the freed cells and pages
/// of this transaction, and a checkpoint then moves the pages into the
/// database and truncates the WAL, whose older frames still hold the id.
pub fn erase(conn: &Connection, chat: &str) -> Result<Erased, LedgerError> {
    conn.pragma_update(None, "secure_delete", "ON")?;
    let erased = erase_rows(conn, chat);
    let _ = conn.pragma_update(None, "secure_delete", "FAST");
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

fn erase_rows(conn: &Connection, chat: &str) -> Result<Erased, LedgerError> {
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
    tx.commit()?;
    Ok(Erased {
        subscriber,
        deliveries_anonymised,
        deliveries_skipped,
    })
}

/// One Telegram delivery to a chat, for a subject access export.
#[derive(Debug, Clone, Serialize)]
pub struct ChatDelivery {
    pub alert_id: String,
    pub state: String,
    pub updated_at: String,
    pub acknowledged_at: Option<String>,
}

fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Every Telegram delivery addressed to `chat`, oldest first.
pub fn deliveries_to(conn: &Connection, chat: &str) -> Result<Vec<ChatDelivery>, LedgerError> {
    let mut stmt = conn.prepare(
        "SELECT alert_id, state, updated_at, acknowledged_at FROM deliveries
         WHERE channel = 'telegram' AND address = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([chat], |r| {
        Ok(ChatDelivery {
            alert_id: r.get(0)?,
            state: r.get(1)?,
            updated_at: ms_to_rfc3339(r.get(2)?),
            acknowledged_at: r.get::<_, Option<i64>>(3)?.map(ms_to_rfc3339),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Recorded,
    AlreadyRecorded,
    /// Unknown delivery, wrong token, or pressed from another chat.
    Invalid,
}

/// Records the press of the "✅ Ricevuto" button on a delivery, if the token
/// prefix and the chat match the delivery.
pub fn acknowledge(
    conn: &Connection,
    delivery_id: i64,
    token_prefix: &str,
    chat: &str,
) -> Result<Ack, LedgerError> {
    let row: Option<(String, String, Option<i64>)> = conn
        .query_row(
            "SELECT address, token, acknowledged_at FROM deliveries
             WHERE id = ?1 AND channel = 'telegram'",
            [delivery_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((address, token, acked)) = row else {
        return Ok(Ack::Invalid);
    };
    if address != chat || token_prefix.len() != 16 || !token.starts_with(token_prefix) {
        return Ok(Ack::Invalid);
    }
    if acked.is_some() {
        return Ok(Ack::AlreadyRecorded);
    }
    let n = conn.execute(
        "UPDATE deliveries SET acknowledged_at = ?2 WHERE id = ?1 AND acknowledged_at IS NULL",
        params![delivery_id, now_ms()],
    )?;
    Ok(if n == 1 {
        Ack::Recorded
    } else {
        Ack::AlreadyRecorded
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(&dir.path().join("t.db")).expect("open");
        (dir, ledger)
    }

    fn delivery(conn: &Connection, id: i64, address: &str, state: &str) {
        conn.execute(
            "INSERT OR IGNORE INTO alerts (id, template, variables, status, msg_type, audience, channels,
                                 rendered, headline, created_at, operator, host, thread_id)
             VALUES ('a' || ?1, 't', '{}', 'Actual', 'Alert', '{}', '[]', '{}', 'h', 'now', 'o', 'h', 'a' || ?1)",
            [id],
        )
        .expect("alert");
        conn.execute(
            "INSERT INTO deliveries (id, alert_id, channel, address, recipient, language, state, updated_at, token)
             VALUES (?1, 'a' || ?1, 'telegram', ?2, 'subscriber:' || ?2, 'it', ?3, 0, '0123456789abcdef0123456789abcdef')",
            params![id, address, state],
        )
        .expect("delivery");
    }

    #[test]
    fn start_toggle_stop_and_restart() {
        let (_d, l) = ledger();
        let c = l.conn();
        let s = start(c, "42", "it").expect("start");
        assert!(s.active && s.zones.is_empty());
        assert_eq!(
            toggle_zone(c, "42", "fibbiana").expect("t"),
            Some(vec!["fibbiana".into()])
        );
        assert_eq!(
            toggle_zone(c, "42", "centro").expect("t"),
            Some(vec!["centro".into(), "fibbiana".into()])
        );
        assert_eq!(
            toggle_zone(c, "42", "fibbiana").expect("t"),
            Some(vec!["centro".into()])
        );
        assert_eq!(toggle_zone(c, "7", "centro").expect("t"), None);
        assert!(stop(c, "42").expect("stop"));
        assert!(!get(c, "42").expect("get").expect("row").active);
        let again = start(c, "42", "en").expect("restart");
        assert!(again.active);
        assert_eq!(
            again.zones,
            vec!["centro".to_owned()],
            "zones survive /stop"
        );
    }

    #[test]
    fn acknowledgement_needs_matching_token_and_chat() {
        let (_d, l) = ledger();
        delivery(l.conn(), 5, "42", "sent");
        let c = l.conn();
        assert_eq!(
            acknowledge(c, 5, "0123456789abcdee", "42").expect("a"),
            Ack::Invalid
        );
        assert_eq!(
            acknowledge(c, 5, "0123456789abcdef", "43").expect("a"),
            Ack::Invalid
        );
        assert_eq!(
            acknowledge(c, 6, "0123456789abcdef", "42").expect("a"),
            Ack::Invalid
        );
        assert_eq!(
            acknowledge(c, 5, "0123456789abcdef", "42").expect("a"),
            Ack::Recorded
        );
        assert_eq!(
            acknowledge(c, 5, "0123456789abcdef", "42").expect("a"),
            Ack::AlreadyRecorded
        );
    }

    #[test]
    fn erase_deletes_subscriber_and_anonymises_deliveries() {
        let (_d, l) = ledger();
        start(l.conn(), "42", "it").expect("start");
        delivery(l.conn(), 1, "42", "sent");
        delivery(l.conn(), 2, "42", "pending");
        delivery(l.conn(), 3, "99", "sent");
        let erased = erase(l.conn(), "42").expect("erase");
        assert_eq!(
            erased,
            Erased {
                subscriber: true,
                deliveries_anonymised: 2,
                deliveries_skipped: 1
            }
        );
        let c = l.conn();
        assert_eq!(get(c, "42").expect("get"), None);
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
