//! The hot path as a trait the engine could drive whatever the backend: a
//! proposal for issue 17 (see the report on the `postgres` branch). Async,
//! because PostgreSQL is reached over a network; the SQLite ledger would
//! implement it through its writer thread, as `dispatch::Queue` does today
//! (the writer already answers claims over a oneshot channel).
//!
//! What differs from `dispatch::Queue`: the caller names itself (`worker`),
//! since on PostgreSQL several processes work one alert, and a settle says
//! which outcomes it could not write (the worker lost those deliveries).

use std::future::Future;

use super::{Claim, NewDelivery, PgError, PgLedger, Settled};
use crate::domain::ChannelId;
use crate::ledger::{Backlog, Halt, NewAlert, Record};

pub trait DeliveryStore: Clone + Send + Sync + 'static {
    /// The alert row and its deliveries, in one transaction.
    fn plan(
        &self,
        alert: &NewAlert,
        rows: &[NewDelivery],
    ) -> impl Future<Output = Result<usize, PgError>> + Send;

    /// Up to `limit` deliveries of `channel` now held by `worker` under a
    /// lease, or why the alert must not be sent any more.
    fn claim(
        &self,
        alert_id: &str,
        worker: &str,
        channel: ChannelId,
        limit: usize,
    ) -> impl Future<Output = Result<Result<Vec<Claim>, Halt>, PgError>> + Send;

    /// Writes `worker`'s outcomes; those of deliveries it no longer holds
    /// change nothing.
    fn settle(
        &self,
        worker: &str,
        batch: &[Record],
    ) -> impl Future<Output = Result<Settled, PgError>> + Send;

    /// Extends the leases `worker` holds.
    fn renew(&self, worker: &str) -> impl Future<Output = Result<u64, PgError>> + Send;

    fn unsettled(
        &self,
        alert_id: &str,
        channel: ChannelId,
    ) -> impl Future<Output = Result<Backlog, PgError>> + Send;

    fn settle_if_done(&self, alert_id: &str) -> impl Future<Output = Result<bool, PgError>> + Send;
}

impl DeliveryStore for PgLedger {
    async fn plan(&self, alert: &NewAlert, rows: &[NewDelivery]) -> Result<usize, PgError> {
        PgLedger::plan(self, alert, rows).await
    }

    async fn claim(
        &self,
        alert_id: &str,
        worker: &str,
        channel: ChannelId,
        limit: usize,
    ) -> Result<Result<Vec<Claim>, Halt>, PgError> {
        PgLedger::claim(self, alert_id, worker, channel, limit).await
    }

    async fn settle(&self, worker: &str, batch: &[Record]) -> Result<Settled, PgError> {
        PgLedger::settle(self, worker, batch).await
    }

    async fn renew(&self, worker: &str) -> Result<u64, PgError> {
        PgLedger::renew(self, worker).await
    }

    async fn unsettled(&self, alert_id: &str, channel: ChannelId) -> Result<Backlog, PgError> {
        PgLedger::unsettled(self, alert_id, channel).await
    }

    async fn settle_if_done(&self, alert_id: &str) -> Result<bool, PgError> {
        PgLedger::settle_if_done(self, alert_id).await
    }
}
