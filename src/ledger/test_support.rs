//! Fixtures shared by the ledger's unit tests.

use super::sql::{Conn, params};

use super::Ledger;

pub fn ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(dir.path().join("t.db")).expect("open");
    (dir, ledger)
}

/// A Telegram delivery `id` to `address` (alert `a<id>`, recipient
/// `subscriber:<address>`, token `0123456789abcdef…`).
pub fn delivery(conn: &Conn, id: i64, address: &str, state: &str) {
    conn.execute(
        "INSERT INTO alerts (id, template, variables, status, msg_type, audience, channels,
                             rendered, headline, created_at, operator, host, thread_id)
         VALUES ('a' || ?1, 't', '{}', 'Actual', 'Alert', '{}', '[]', '{}', 'h', 'now', 'o', 'h', 'a' || ?1) ON CONFLICT DO NOTHING",
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
