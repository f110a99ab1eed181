//! Planning in chunks (SPEC §10, first message; migration 5). A send plans
//! its first registry addresses inside the alert's own transaction and
//! records what is left in `plan_pending`; each later chunk adds its rows
//! and moves the cursor in one transaction, so a chunk is planned wholly or
//! not at all and planning it twice adds nothing. While a plan is pending
//! the alert is not settled and its lanes wait for more rows.

use super::sql::{Behavior, Conn, OptionalExtension, params};

use super::registry::{json_array, matches};
use super::{AudienceFilter, Ledger, LedgerError, now_ms};
use crate::domain::ChannelId;

/// Registry addresses planned in the alert's own transaction: enough to
/// keep every lane busy until the next chunk lands, small enough that the
/// first message leaves within SPEC §10's bound at 100,000.
const FIRST_CHUNK: i64 = 2_000;

/// Registry addresses per later chunk: one short write transaction (about
/// ten milliseconds) of the engine's writer between claims.
const CHUNK: i64 = 2_500;

/// `(first, later)` chunk sizes. `ALLERTA_PLAN_CHUNK=N` sets both (tuning,
/// and tests that need a plan to stay pending long enough to be killed
/// half way); what is planned never depends on it.
fn sizes() -> (i64, i64) {
    static SIZES: std::sync::OnceLock<(i64, i64)> = std::sync::OnceLock::new();
    *SIZES.get_or_init(|| {
        match std::env::var("ALLERTA_PLAN_CHUNK")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            Some(n) if n > 0 => (n, n),
            _ => (FIRST_CHUNK, CHUNK),
        }
    })
}

/// What a pending plan selects, as stored with it: the configuration may
/// change before `resume` finishes it; the alert's audience does not.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    pub channels: Vec<String>,
    pub audience: AudienceFilter,
    pub drill: AudienceFilter,
    pub default_language: String,
    /// Channels planned as an escalation step (SPEC §14): held until due.
    #[serde(default)]
    pub holds: Vec<Hold>,
}

/// An escalation step's channel: its deliveries are planned held.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hold {
    pub channel: ChannelId,
    /// The step's number (1-based).
    pub step: u32,
    /// When it is due (ms since the epoch).
    pub until_ms: i64,
}

/// `CASE a.channel WHEN … END` giving each held channel's `value`, else
/// `otherwise`. Channel names and numbers only: nothing from outside.
fn per_hold(holds: &[Hold], value: impl Fn(&Hold) -> i64, otherwise: &str) -> String {
    if holds.is_empty() {
        return otherwise.to_owned();
    }
    let arms: String = holds
        .iter()
        .map(|h| format!(" WHEN '{}' THEN {}", h.channel.as_str(), value(h)))
        .collect();
    format!("(CASE a.channel{arms} ELSE {otherwise} END)")
}

/// How far a pending plan went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// This many deliveries were added; more chunks follow.
    More(usize),
    /// The plan is complete (this call added the given number last).
    Complete(usize),
}

/// Inside the plan's transaction: plans the first chunk and records the
/// rest as pending. Returns how many deliveries it added.
pub(super) fn plan_first(
    conn: &Conn,
    alert_id: &str,
    now: i64,
    spec: &Spec,
) -> Result<usize, LedgerError> {
    let (first, last): (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT MIN(seq), MAX(seq) FROM registry_addresses",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(0);
    };
    let end = first.saturating_add(sizes().0 - 1).min(last);
    let added = insert_range(conn, alert_id, now, spec, first, end)?;
    if end < last {
        conn.execute(
            "INSERT INTO plan_pending (alert_id, next_seq, last_seq, spec) VALUES (?1, ?2, ?3, ?4)",
            params![alert_id, end + 1, last, to_json(spec)?],
        )?;
    }
    Ok(added)
}

/// The registry addresses with `from <= seq <= to` that `spec` selects.
fn insert_range(
    conn: &Conn,
    alert_id: &str,
    now: i64,
    spec: &Spec,
    from: i64,
    to: i64,
) -> Result<usize, LedgerError> {
    let sql = format!(
        "INSERT INTO deliveries (alert_id, channel, address, recipient, language, state, updated_at, token, outside_drill,
                                 escalation_step, held_until, next_attempt_at)
         SELECT ?1, a.channel, a.address, c.contact_id, COALESCE(c.language, ?2), 'pending', ?3,
                {token}, CASE WHEN {drill} THEN 0 ELSE 1 END, {step}, {until}, {next}
         FROM registry_addresses a JOIN registry_contacts c ON c.row = a.row
         WHERE a.seq BETWEEN ?5 AND ?6
           AND {plus}a.channel IN (SELECT value FROM {channels}) AND {audience}
         ORDER BY a.seq
         ON CONFLICT (alert_id, channel, address) DO NOTHING",
        token = conn.random_token(),
        // SQLite's `+`: the range of `seq` is the index to use (file order).
        plus = if conn.is_postgres() { "" } else { "+" },
        channels = conn.json_each("?4"),
        audience = matches(conn, "1"),
        drill = matches(conn, "2"),
        step = per_hold(&spec.holds, |h| i64::from(h.step), "NULL"),
        until = per_hold(&spec.holds, |h| h.until_ms, "NULL"),
        next = per_hold(&spec.holds, |_| super::escalation::HELD, "0"),
    );
    let (all, zones, groups) = spec.audience.sql_values();
    let (drill_all, drill_zones, drill_groups) = spec.drill.sql_values();
    // Placeholders ?11..?13 are the audience, ?21..?23 the drill audience.
    // `+a.channel`: the range of `seq` is the index to use (file order).
    let n = conn
        .prepare_cached(&sql)?
        .execute(super::sql::Numbered(vec![
            (1, &alert_id as &dyn super::sql::ToValue),
            (2, &spec.default_language as &dyn super::sql::ToValue),
            (3, &now as &dyn super::sql::ToValue),
            (4, &json_array(&spec.channels) as &dyn super::sql::ToValue),
            (5, &from as &dyn super::sql::ToValue),
            (6, &to as &dyn super::sql::ToValue),
            (11, &all as &dyn super::sql::ToValue),
            (12, &zones as &dyn super::sql::ToValue),
            (13, &groups as &dyn super::sql::ToValue),
            (21, &drill_all as &dyn super::sql::ToValue),
            (22, &drill_zones as &dyn super::sql::ToValue),
            (23, &drill_groups as &dyn super::sql::ToValue),
        ]))?;
    Ok(n)
}

/// Plans the next `max_rows` registry addresses of `alert_id`'s pending
/// plan, if any, on `conn` (inside a transaction the caller commits).
fn step(conn: &Conn, alert_id: &str, max_rows: i64) -> Result<Chunk, LedgerError> {
    let pending: Option<(i64, i64, String)> = conn
        .query_row(
            "SELECT next_seq, last_seq, spec FROM plan_pending WHERE alert_id = ?1",
            params![alert_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((next, last, spec)) = pending else {
        return Ok(Chunk::Complete(0));
    };
    let spec: Spec = serde_json::from_str(&spec)
        .map_err(|e| LedgerError::Corrupt(format!("alert {alert_id}: pending plan: {e}")))?;
    let end = next.saturating_add(max_rows - 1).min(last);
    let added = insert_range(conn, alert_id, now_ms(), &spec, next, end)?;
    if end >= last {
        conn.execute(
            "DELETE FROM plan_pending WHERE alert_id = ?1",
            params![alert_id],
        )?;
        Ok(Chunk::Complete(added))
    } else {
        conn.execute(
            "UPDATE plan_pending SET next_seq = ?2 WHERE alert_id = ?1",
            params![alert_id, end + 1],
        )?;
        Ok(Chunk::More(added))
    }
}

/// Inside a registry rebuild's transaction: every pending plan is planned
/// to its end from the registry it started from.
pub(super) fn complete_all(conn: &Conn) -> Result<(), LedgerError> {
    let ids: Vec<String> = conn
        .prepare("SELECT alert_id FROM plan_pending ORDER BY rowid")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in ids {
        step(conn, &id, i64::MAX)?;
    }
    Ok(())
}

fn to_json(spec: &Spec) -> Result<String, LedgerError> {
    serde_json::to_string(spec).map_err(|e| LedgerError::Corrupt(format!("pending plan: {e}")))
}

impl Ledger {
    /// Plans one more chunk of `alert_id`, durably whatever the
    /// connection's mode: a chunk is on disk before its rows can be claimed
    /// (SPEC §11), even on the writer's batched connection.
    pub fn plan_chunk(&mut self, alert_id: &str) -> Result<Chunk, LedgerError> {
        // PostgreSQL commits durably (and to a synchronous standby) anyway.
        let mode: Option<i64> = match self.conn.as_sqlite() {
            Some(c) => {
                let mode = c.pragma_query_value(None, "synchronous", |r| r.get(0))?;
                c.pragma_update(None, "synchronous", "FULL")?;
                Some(mode)
            }
            None => None,
        };
        let planned = (|| {
            let tx = self.conn.transaction_with_behavior(Behavior::Immediate)?;
            let chunk = step(&tx, alert_id, sizes().1)?;
            tx.commit()?;
            Ok(chunk)
        })();
        if let (Some(c), Some(mode)) = (self.conn.as_sqlite(), mode) {
            c.pragma_update(None, "synchronous", mode)?;
        }
        planned
    }

    /// Plans `alert_id` to its end (a no-op when it is fully planned).
    /// Returns how many deliveries this added.
    pub fn finish_planning(&mut self, alert_id: &str) -> Result<usize, LedgerError> {
        let mut added = 0;
        loop {
            match self.plan_chunk(alert_id)? {
                Chunk::More(n) => added += n,
                Chunk::Complete(n) => return Ok(added + n),
            }
        }
    }

    /// Whether `alert_id` still has registry addresses to plan.
    pub fn planning_pending(&self, alert_id: &str) -> Result<bool, LedgerError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM plan_pending WHERE alert_id = ?1)",
            params![alert_id],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RegistryContact;
    use crate::ledger::test_support::ledger;

    /// A registry of `n` contacts with one email each at `domain`.
    fn registry(l: &mut Ledger, n: usize, domain: &str) {
        let mut w = l.rebuild_registry(domain).unwrap();
        for i in 1..=n {
            let id = format!("c{i}");
            let email = format!("u{i}@{domain}");
            w.contact(&RegistryContact {
                id: &id,
                language: None,
                zones: vec!["centro"],
                groups: vec![],
                addresses: &[(ChannelId::Email, email.as_str())],
            })
            .unwrap();
        }
        w.commit().unwrap();
    }

    fn spec() -> Spec {
        let nobody = AudienceFilter {
            all: false,
            zones: vec![],
            groups: vec![],
        };
        Spec {
            channels: vec!["email".into()],
            audience: AudienceFilter {
                all: true,
                ..nobody.clone()
            },
            drill: nobody,
            default_language: "it".into(),
            holds: vec![],
        }
    }

    /// Alert `a` with its first chunk planned, as `send` leaves it.
    fn planned(l: &Ledger) -> usize {
        l.conn
            .execute(
                "INSERT INTO alerts (id, template, variables, status, msg_type, audience, channels,
                                     rendered, headline, created_at, operator, host, thread_id, state)
                 VALUES ('a', 't', '{}', 'Actual', 'Alert', '{}', '[\"email\"]', '{}', 'h', 'now', 'o', 'h', 'a', 'sending')",
                [],
            )
            .unwrap();
        plan_first(&l.conn, "a", now_ms(), &spec()).unwrap()
    }

    fn addresses(l: &Ledger) -> Vec<String> {
        l.conn
            .prepare("SELECT address FROM deliveries WHERE alert_id = 'a' ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_plan_is_finished_chunk_by_chunk_in_file_order() {
        let (_d, mut l) = ledger();
        registry(&mut l, 5_000, "a.example");
        assert_eq!(planned(&l), FIRST_CHUNK as usize);
        assert!(l.planning_pending("a").unwrap());
        assert_eq!(l.plan_chunk("a").unwrap(), Chunk::More(CHUNK as usize));
        assert_eq!(l.plan_chunk("a").unwrap(), Chunk::Complete(500));
        assert_eq!(l.plan_chunk("a").unwrap(), Chunk::Complete(0));
        assert!(!l.planning_pending("a").unwrap());
        let got = addresses(&l);
        let want: Vec<String> = (1..=5_000).map(|i| format!("u{i}@a.example")).collect();
        assert_eq!(got, want, "everyone once, in file order");
    }

    #[test]
    fn planning_a_chunk_again_adds_nobody_twice() {
        let (_d, mut l) = ledger();
        registry(&mut l, 5_000, "a.example");
        planned(&l);
        let cursor: (i64, i64, String) = l
            .conn
            .query_row(
                "SELECT next_seq, last_seq, spec FROM plan_pending",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        l.finish_planning("a").unwrap();
        // The cursor as it was before the chunks: they are planned again.
        l.conn
            .execute(
                "INSERT INTO plan_pending (alert_id, next_seq, last_seq, spec) VALUES ('a', ?1, ?2, ?3)",
                params![cursor.0, cursor.1, cursor.2],
            )
            .unwrap();
        assert_eq!(l.finish_planning("a").unwrap(), 0);
        assert_eq!(addresses(&l).len(), 5_000);
    }

    #[test]
    fn a_registry_rebuild_first_finishes_plans_from_the_files_they_started_from() {
        let (_d, mut l) = ledger();
        registry(&mut l, 5_000, "old.example");
        planned(&l);
        registry(&mut l, 10, "new.example");
        assert!(!l.planning_pending("a").unwrap());
        let got = addresses(&l);
        assert_eq!(got.len(), 5_000);
        assert!(got.iter().all(|a| a.ends_with("@old.example")), "{got:?}");
    }

    #[test]
    fn an_alert_never_settles_while_its_plan_is_pending() {
        let (_d, mut l) = ledger();
        registry(&mut l, 3_000, "a.example");
        planned(&l);
        l.conn
            .execute("UPDATE deliveries SET state = 'sent'", [])
            .unwrap();
        assert!(
            !l.settle_if_done("a").unwrap(),
            "a thousand are not planned yet"
        );
        let backlog = l.unsettled("a", ChannelId::Email).unwrap();
        assert_eq!((backlog.left, backlog.planning), (0, true));
        l.finish_planning("a").unwrap();
        l.conn
            .execute("UPDATE deliveries SET state = 'sent'", [])
            .unwrap();
        assert!(l.settle_if_done("a").unwrap());
    }
}
