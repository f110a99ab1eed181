//! Drafts from official bulletins (SPEC §16) and what each watched source
//! last said: every SQL statement of `allerta watch`, `allerta drafts` and
//! `send --draft` lives here.

use std::collections::BTreeMap;

use super::sql::{OptionalExtension, params};
use serde::Serialize;

use super::{Ledger, LedgerError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DraftState {
    Pending,
    Sent,
    Discarded,
}

impl DraftState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Discarded => "discarded",
        }
    }

    fn parse(s: &str) -> Result<Self, LedgerError> {
        match s {
            "pending" => Ok(Self::Pending),
            "sent" => Ok(Self::Sent),
            "discarded" => Ok(Self::Discarded),
            other => Err(LedgerError::Corrupt(format!("draft state `{other}`"))),
        }
    }
}

/// A draft about to be stored.
#[derive(Debug, Clone)]
pub struct NewDraft {
    pub source: String,
    pub subject: String,
    pub day: String,
    pub levels: BTreeMap<String, String>,
    pub template: String,
    pub variables: BTreeMap<String, String>,
    pub audience: Vec<String>,
    pub cancels: Option<String>,
    pub text: String,
}

/// A stored draft.
#[derive(Debug, Clone, Serialize)]
pub struct DraftRow {
    pub id: i64,
    pub source: String,
    pub subject: String,
    pub day: String,
    pub levels: BTreeMap<String, String>,
    pub template: String,
    pub variables: BTreeMap<String, String>,
    pub audience: Vec<String>,
    pub cancels: Option<String>,
    pub text: String,
    pub state: DraftState,
    pub alert_id: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
}

const COLUMNS: &str = "id, source, subject, day, levels, template, variables, audience, cancels, \
                       text, state, alert_id, created_at, decided_at, decided_by";

fn json_col<T: serde::de::DeserializeOwned>(
    r: &super::sql::Row<'_>,
    i: usize,
) -> super::sql::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| super::sql::conversion_error(i, e.to_string()))
}

fn row(r: &super::sql::Row<'_>) -> super::sql::Result<(DraftRow, String)> {
    let state: String = r.get(10)?;
    Ok((
        DraftRow {
            id: r.get(0)?,
            source: r.get(1)?,
            subject: r.get(2)?,
            day: r.get(3)?,
            levels: json_col(r, 4)?,
            template: r.get(5)?,
            variables: json_col(r, 6)?,
            audience: json_col(r, 7)?,
            cancels: r.get(8)?,
            text: r.get(9)?,
            state: DraftState::Pending,
            alert_id: r.get(11)?,
            created_at: r.get(12)?,
            decided_at: r.get(13)?,
            decided_by: r.get(14)?,
        },
        state,
    ))
}

fn finish((mut draft, state): (DraftRow, String)) -> Result<DraftRow, LedgerError> {
    draft.state = DraftState::parse(&state)?;
    Ok(draft)
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

impl Ledger {
    /// Records what a source says now about a subject and day, and the
    /// drafts that reading creates, in one transaction: a crash never
    /// leaves a draft without the levels that made it (which would make a
    /// second draft of the same bulletin) nor the levels without the draft.
    ///
    /// `before` is what the caller read as the previous levels: when
    /// another `watch` recorded this day in between (a timer and the
    /// daemon at once), nothing is written and `None` is returned, so two
    /// processes never make the same draft. Returns the new drafts' ids.
    pub fn record_bulletin(
        &mut self,
        source: &str,
        subject: &str,
        day: &str,
        before: Option<&BTreeMap<String, String>>,
        levels: &BTreeMap<String, String>,
        drafts: &[NewDraft],
    ) -> Result<Option<Vec<i64>>, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(super::sql::Behavior::Immediate)?;
        let stored: Option<String> = tx
            .query_row(
                "SELECT levels FROM watch_state WHERE source = ?1 AND subject = ?2 AND day = ?3",
                params![source, subject, day],
                |r| r.get(0),
            )
            .optional()?;
        let stored: Option<BTreeMap<String, String>> = stored
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| LedgerError::Corrupt(format!("watch_state levels: {e}")))?;
        if stored.as_ref() != before {
            return Ok(None);
        }
        let mut ids = Vec::new();
        for d in drafts {
            ids.push(insert_draft(&tx, d)?);
        }
        tx.execute(
            "INSERT INTO watch_state (source, subject, day, levels, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (source, subject, day) DO UPDATE
             SET levels = excluded.levels, updated_at = excluded.updated_at",
            params![
                source,
                subject,
                day,
                to_json(levels),
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ],
        )?;
        tx.commit()?;
        Ok(Some(ids))
    }
}

fn insert_draft(conn: &super::sql::Conn, d: &NewDraft) -> Result<i64, LedgerError> {
    Ok(conn.query_row(
        "INSERT INTO drafts (source, subject, day, levels, template, variables, audience,
                                 cancels, text, state, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10) RETURNING id",
        params![
            d.source,
            d.subject,
            d.day,
            to_json(&d.levels),
            d.template,
            to_json(&d.variables),
            to_json(&d.audience),
            d.cancels,
            d.text,
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ],
        |r| r.get(0),
    )?)
}

impl Ledger {
    /// Every draft, newest first.
    pub fn drafts(&self) -> Result<Vec<DraftRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM drafts ORDER BY id DESC"))?;
        let rows = stmt.query_map([], row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// One draft by the id the officer typed.
    pub fn draft(&self, id: &str) -> Result<DraftRow, LedgerError> {
        let unknown = || LedgerError::UnknownDraft(id.to_owned());
        let number: i64 = id.trim().parse().map_err(|_| unknown())?;
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM drafts WHERE id = ?1"),
                [number],
                row,
            )
            .optional()?
            .map(finish)
            .transpose()?
            .ok_or_else(unknown)
    }

    /// Moves a pending draft to `sent` (with its alert) or `discarded`.
    /// Returns false when the draft was no longer pending.
    pub fn decide_draft(
        &mut self,
        id: i64,
        state: DraftState,
        alert_id: Option<&str>,
        by: &str,
    ) -> Result<bool, LedgerError> {
        let changed = self.conn.execute(
            "UPDATE drafts SET state = ?2, alert_id = ?3, decided_at = ?4, decided_by = ?5
             WHERE id = ?1 AND state = 'pending'",
            params![
                id,
                state.as_str(),
                alert_id,
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                by
            ],
        )?;
        Ok(changed == 1)
    }

    /// The drafts of one bulletin day (source, subject, day) that were sent
    /// as alerts, not themselves cessata-allerta drafts.
    pub fn sent_drafts_for(
        &self,
        source: &str,
        subject: &str,
        day: &str,
    ) -> Result<Vec<DraftRow>, LedgerError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM drafts
             WHERE source = ?1 AND subject = ?2 AND day = ?3
               AND state = 'sent' AND cancels IS NULL AND alert_id IS NOT NULL
             ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![source, subject, day], row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// Whether a cessata-allerta draft for this alert already exists.
    pub fn cessata_exists(&self, alert_id: &str) -> Result<bool, LedgerError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM drafts WHERE cancels = ?1",
            [alert_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// What a source last said about a subject for each day (risk → level).
    pub fn watch_levels(
        &self,
        source: &str,
        subject: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT day, levels FROM watch_state WHERE source = ?1 AND subject = ?2")?;
        let rows = stmt.query_map(params![source, subject], |r| {
            Ok((r.get::<_, String>(0)?, json_col(r, 1)?))
        })?;
        rows.map(|r| r.map_err(LedgerError::from)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> NewDraft {
        NewDraft {
            source: "dpc".into(),
            subject: "Montelupo Fiorentino".into(),
            day: "2026-12-02".into(),
            levels: BTreeMap::from([("idraulico".into(), "giallo".into())]),
            template: "allerta-meteo".into(),
            variables: BTreeMap::new(),
            audience: vec!["all".into()],
            cancels: None,
            text: "Allerta".into(),
        }
    }

    #[test]
    fn a_second_watch_that_read_the_same_levels_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path().join("a.db")).unwrap();
        let d = draft();
        let first = ledger
            .record_bulletin(
                &d.source,
                &d.subject,
                &d.day,
                None,
                &d.levels,
                std::slice::from_ref(&d),
            )
            .unwrap();
        assert_eq!(first, Some(vec![1]));
        // Another process read "nothing known" before the first recorded.
        let second = ledger
            .record_bulletin(
                &d.source,
                &d.subject,
                &d.day,
                None,
                &d.levels,
                std::slice::from_ref(&d),
            )
            .unwrap();
        assert_eq!(second, None);
        assert_eq!(ledger.drafts().unwrap().len(), 1);
        // Reading what is stored, it may record again.
        let known = ledger.watch_levels(&d.source, &d.subject).unwrap();
        let third = ledger
            .record_bulletin(
                &d.source,
                &d.subject,
                &d.day,
                known.get(&d.day),
                &d.levels,
                &[],
            )
            .unwrap();
        assert_eq!(third, Some(vec![]));
    }
}
