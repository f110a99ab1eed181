//! The Telegram bot's subscribers (chat id, zones, language, active): what
//! the bot, the planner and `allerta subscribers` read and change. Only the
//! chat id is stored about a person, never their name: it is all the
//! service needs.

use super::sql::{Conn, OptionalExtension, params};
use serde::Serialize;

use super::{Ledger, LedgerError, Planner};
use crate::domain::ZoneId;

/// An active bot subscriber: chat id, zones, language.
pub struct ActiveSubscriber {
    pub chat: String,
    pub zones: Vec<ZoneId>,
    pub language: String,
}

/// A subscriber row, active or not.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Subscriber {
    pub chat_id: String,
    pub zones: Vec<String>,
    pub language: String,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// The subscribers' clock: RFC 3339 UTC to the second (`…Z`).
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn split_zones(s: &str) -> Vec<String> {
    s.split(';')
        .filter(|z| !z.is_empty())
        .map(str::to_owned)
        .collect()
}

fn from_row(r: &super::sql::Row<'_>) -> super::sql::Result<Subscriber> {
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

impl Ledger {
    /// Every active subscriber, by chat id (an empty list when the bot
    /// never ran).
    pub fn active_subscribers(&self) -> Result<Vec<ActiveSubscriber>, LedgerError> {
        active_subscribers(&self.conn)
    }

    pub fn subscriber(&self, chat: &str) -> Result<Option<Subscriber>, LedgerError> {
        get(&self.conn, chat)
    }

    /// Every subscriber, active or not, in chat id order.
    pub fn subscribers(&self) -> Result<Vec<Subscriber>, LedgerError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM subscribers ORDER BY chat_id"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// `/start`: creates the subscriber, or makes an existing one active
    /// again.
    pub fn start_subscriber(&self, chat: &str, language: &str) -> Result<Subscriber, LedgerError> {
        let t = now();
        self.conn.execute(
            "INSERT INTO subscribers (chat_id, zones, language, active, created_at, updated_at)
             VALUES (?1, '', ?2, 1, ?3, ?3)
             ON CONFLICT (chat_id) DO UPDATE SET active = 1, updated_at = ?3",
            params![chat, language, t],
        )?;
        get(&self.conn, chat)?
            .ok_or_else(|| LedgerError::Corrupt("subscriber vanished after insert".into()))
    }

    /// Adds the zone if missing, removes it if present; returns the new
    /// zones (`None`: not a subscriber).
    pub fn toggle_zone(&self, chat: &str, zone: &str) -> Result<Option<Vec<String>>, LedgerError> {
        let Some(s) = get(&self.conn, chat)? else {
            return Ok(None);
        };
        let mut zones = s.zones;
        if let Some(i) = zones.iter().position(|z| z == zone) {
            zones.remove(i);
        } else {
            zones.push(zone.to_owned());
            zones.sort();
        }
        self.conn.execute(
            "UPDATE subscribers SET zones = ?2, updated_at = ?3 WHERE chat_id = ?1",
            params![chat, zones.join(";"), now()],
        )?;
        Ok(Some(zones))
    }

    /// Returns false when `chat` is not a subscriber.
    pub fn set_language(&self, chat: &str, language: &str) -> Result<bool, LedgerError> {
        Ok(self.conn.execute(
            "UPDATE subscribers SET language = ?2, updated_at = ?3 WHERE chat_id = ?1",
            params![chat, language, now()],
        )? == 1)
    }

    /// `/stop`, a chat that blocked the bot, or one Telegram says is gone:
    /// no more alerts; the row stays until `/cancellami`. Returns whether an
    /// active subscriber was stopped.
    pub fn stop_subscriber(&self, chat: &str) -> Result<bool, LedgerError> {
        Ok(self.conn.execute(
            "UPDATE subscribers SET active = 0, updated_at = ?2 WHERE chat_id = ?1 AND active = 1",
            params![chat, now()],
        )? == 1)
    }
}

fn get(conn: &Conn, chat: &str) -> Result<Option<Subscriber>, LedgerError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM subscribers WHERE chat_id = ?1"),
            [chat],
            from_row,
        )
        .optional()?)
}

impl Planner<'_> {
    /// Every active subscriber, by chat id, read through the plan's
    /// transaction so the plan is consistent.
    pub fn active_subscribers(&self) -> Result<Vec<ActiveSubscriber>, LedgerError> {
        active_subscribers(self.conn())
    }
}

/// Every active subscriber, by chat id. Read through the plan's transaction
/// so the plan is consistent (migration 1 made the table: empty when the
/// bot never ran).
fn active_subscribers(conn: &Conn) -> Result<Vec<ActiveSubscriber>, LedgerError> {
    let mut stmt = conn.prepare(
        "SELECT chat_id, zones, language FROM subscribers WHERE active = 1 ORDER BY chat_id",
    )?;
    let rows = stmt.query_map([], |r| {
        let zones: String = r.get(1)?;
        Ok(ActiveSubscriber {
            chat: r.get(0)?,
            zones: zones
                .split(';')
                .filter(|z| !z.is_empty())
                .map(ZoneId::declared)
                .collect(),
            language: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::ledger;

    #[test]
    fn start_toggle_stop_and_restart() {
        let (_d, l) = ledger();
        let s = l.start_subscriber("42", "it").expect("start");
        assert!(s.active && s.zones.is_empty());
        assert_eq!(
            l.toggle_zone("42", "fibbiana").expect("t"),
            Some(vec!["fibbiana".into()])
        );
        assert_eq!(
            l.toggle_zone("42", "centro").expect("t"),
            Some(vec!["centro".into(), "fibbiana".into()])
        );
        assert_eq!(
            l.toggle_zone("42", "fibbiana").expect("t"),
            Some(vec!["centro".into()])
        );
        assert_eq!(l.toggle_zone("7", "centro").expect("t"), None);
        assert!(l.stop_subscriber("42").expect("stop"));
        assert!(!l.subscriber("42").expect("get").expect("row").active);
        let again = l.start_subscriber("42", "en").expect("restart");
        assert!(again.active);
        assert_eq!(
            again.zones,
            vec!["centro".to_owned()],
            "zones survive /stop"
        );
    }
}
