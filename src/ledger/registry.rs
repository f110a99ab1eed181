//! The contact registry (migration 4): the contact files as last
//! validated, so a send plans its whole contact audience with one
//! `INSERT … SELECT` inside the plan's transaction.

use super::sql::{Behavior, Conn, OptionalExtension, params};

use super::{Hold, Ledger, LedgerError, Planner};
use crate::domain::ChannelId;

/// One valid contact as the registry keeps it.
pub struct RegistryContact<'a> {
    pub id: &'a str,
    pub language: Option<&'a str>,
    pub zones: Vec<&'a str>,
    pub groups: Vec<&'a str>,
    /// (channel, address) in channel order.
    pub addresses: &'a [(ChannelId, &'a str)],
}

/// An audience in the registry's terms: everyone, or these zones and groups.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AudienceFilter {
    pub all: bool,
    pub zones: Vec<String>,
    pub groups: Vec<String>,
}

/// Fills a new registry inside one transaction.
pub struct RegistryWriter<'t> {
    tx: super::sql::Tx<'t>,
    row: i64,
    seq: i64,
    problems: i64,
}

impl RegistryWriter<'_> {
    pub fn contact(&mut self, c: &RegistryContact<'_>) -> Result<(), LedgerError> {
        self.row += 1;
        self.tx
            .prepare_cached(
                "INSERT INTO registry_contacts (row, contact_id, language) VALUES (?1, ?2, ?3)",
            )?
            .queue(params![self.row, c.id, c.language])?;
        for (channel, address) in c.addresses {
            self.seq += 1;
            self.tx
                .prepare_cached(
                    "INSERT INTO registry_addresses (seq, row, channel, address) VALUES (?1, ?2, ?3, ?4)",
                )?
                .queue(params![self.seq, self.row, channel.as_str(), address])?;
        }
        for zone in &c.zones {
            self.tx
                .prepare_cached(
                    "INSERT INTO registry_zones (row, zone) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )?
                .queue(params![self.row, zone])?;
        }
        for group in &c.groups {
            self.tx
                .prepare_cached(
                    "INSERT INTO registry_groups (row, grp) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )?
                .queue(params![self.row, group])?;
        }
        Ok(())
    }

    pub fn problem(&mut self, text: &str) -> Result<(), LedgerError> {
        self.problems += 1;
        self.tx
            .prepare_cached("INSERT INTO registry_problems (seq, problem) VALUES (?1, ?2)")?
            .queue(params![self.problems, text])?;
        Ok(())
    }

    pub fn commit(self) -> Result<(), LedgerError> {
        self.tx.commit()?;
        Ok(())
    }
}

impl Ledger {
    /// What the registry was built from, if it was.
    pub fn registry_fingerprint(&self) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT fingerprint FROM registry_state WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Starts replacing the registry: the old one is gone and the new one
    /// in place when the writer commits, never half of each. Alerts still
    /// being planned from the old one are planned to the end first, in the
    /// same transaction: an alert's audience is the files as they were
    /// when it was sent.
    pub fn rebuild_registry(
        &mut self,
        fingerprint: &str,
    ) -> Result<RegistryWriter<'_>, LedgerError> {
        let tx = self.conn.transaction_with_behavior(Behavior::Immediate)?;
        super::chunks::complete_all(&tx)?;
        tx.execute_batch(
            "DELETE FROM registry_addresses; DELETE FROM registry_zones; DELETE FROM registry_groups;
             DELETE FROM registry_contacts; DELETE FROM registry_problems;",
        )?;
        tx.execute(
            "INSERT INTO registry_state (id, fingerprint, built_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, built_at = excluded.built_at",
            params![fingerprint, chrono::Utc::now().to_rfc3339()],
        )?;
        Ok(RegistryWriter {
            tx,
            row: 0,
            seq: 0,
            problems: 0,
        })
    }

    /// The invalid rows the last validation found, in file order.
    pub fn registry_problems(&self) -> Result<Vec<String>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT problem FROM registry_problems ORDER BY seq")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

/// `c.row` is in the audience: SQL over the registry's zone and group
/// tables, probed per contact through their primary keys (a chunk costs
/// its own rows, never a pass over the whole registry).
pub(super) fn matches(conn: &Conn, prefix: &str) -> String {
    format!(
        "(?{p}1 OR EXISTS (SELECT 1 FROM registry_zones z
                           WHERE z.zone IN (SELECT value FROM {zones}) AND z.row = c.row)
               OR EXISTS (SELECT 1 FROM registry_groups g
                           WHERE g.grp IN (SELECT value FROM {groups}) AND g.row = c.row))",
        p = prefix,
        zones = conn.json_each(&format!("?{prefix}2")),
        groups = conn.json_each(&format!("?{prefix}3")),
    )
}

/// A list as the JSON array `json_each` reads.
pub(super) fn json_array(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".into())
}

impl AudienceFilter {
    /// The values of [`matches`]'s placeholders `?P1` (everyone), `?P2`
    /// (zones) and `?P3` (groups).
    pub(super) fn sql_values(&self) -> (bool, String, String) {
        (self.all, json_array(&self.zones), json_array(&self.groups))
    }
}

impl Planner<'_> {
    /// Plans the registry addresses on `channels` (and, held until due, on
    /// the escalation steps' channels `holds`) whose contact is in
    /// `audience`, in file order (the first contact to give an address
    /// keeps it), marking those outside `drill`: the first chunk now, inside
    /// the plan's transaction, and what is left as a pending plan that the
    /// sender (or `resume`) finishes in chunks. Returns how many deliveries
    /// it added now.
    pub fn add_from_registry(
        &mut self,
        channels: &[ChannelId],
        holds: &[Hold],
        audience: &AudienceFilter,
        drill: &AudienceFilter,
        default_language: &str,
    ) -> Result<usize, LedgerError> {
        let mut channels: Vec<String> = channels.iter().map(|c| c.as_str().to_owned()).collect();
        channels.extend(holds.iter().map(|h| h.channel.as_str().to_owned()));
        let spec = super::chunks::Spec {
            channels,
            audience: audience.clone(),
            drill: drill.clone(),
            default_language: default_language.to_owned(),
            holds: holds.to_vec(),
        };
        super::chunks::plan_first(self.conn(), self.alert_id(), self.now(), &spec)
    }

    /// Whether a registry contact in `audience` gives `address` on
    /// `channel`: that contact's delivery, planned now or in a later chunk,
    /// keeps the address (a bot subscriber with the same chat id is not
    /// planned twice, nor under the subscriber's name).
    pub fn registry_gives(
        &self,
        channel: ChannelId,
        address: &str,
        audience: &AudienceFilter,
    ) -> Result<bool, LedgerError> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM registry_addresses a JOIN registry_contacts c ON c.row = a.row
                            WHERE a.channel = ?1 AND a.address = ?2 AND {})",
            matches(self.conn(), "1")
        );
        let (all, zones, groups) = audience.sql_values();
        Ok(self.conn().prepare_cached(&sql)?.query_row(
            super::sql::Numbered(vec![
                (1, &channel.as_str() as &dyn super::sql::ToValue),
                (2, &address as &dyn super::sql::ToValue),
                (11, &all as &dyn super::sql::ToValue),
                (12, &zones as &dyn super::sql::ToValue),
                (13, &groups as &dyn super::sql::ToValue),
            ]),
            |r| r.get(0),
        )?)
    }
}
