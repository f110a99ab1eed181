//! The Telegram bot's subscribers as the planner sees them.

use rusqlite::Connection;

use super::LedgerError;
use crate::domain::ZoneId;

/// An active bot subscriber: chat id, zones, language.
pub struct ActiveSubscriber {
    pub chat: String,
    pub zones: Vec<ZoneId>,
    pub language: String,
}

/// Every active subscriber, by chat id. Read through the plan's transaction
/// so the plan is consistent (an empty list when the bot never ran).
pub fn active_subscribers(conn: &Connection) -> Result<Vec<ActiveSubscriber>, LedgerError> {
    let exists: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'subscribers'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)?;
    if !exists {
        return Ok(Vec::new());
    }
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
