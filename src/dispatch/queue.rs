//! What the engine needs from storage, as one small interface: claim the
//! next deliveries, record outcomes, count what is left. The ledger's
//! writer thread implements it; the lane's unit tests use an in-memory one.

use std::future::Future;

use crate::domain::ChannelId;
use crate::ledger::{Backlog, Claimed, Halt, Record};

/// Why the engine could not go on (distinct from a delivery failing, which
/// is an outcome, and from a channel stopping, which is a lane's end).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The ledger cannot be read or written: nothing more may be sent,
    /// since nothing more could be recorded.
    #[error("ledger: {0}")]
    Ledger(String),
    /// A lane's task panicked or was cancelled.
    #[error("channel worker crashed: {0}")]
    Worker(String),
}

pub trait Queue: Clone + Send + Sync + 'static {
    /// Up to `limit` due deliveries of `channel`, now `sending`; or why the
    /// alert must not be sent any more by this process.
    fn claim(
        &self,
        channel: ChannelId,
        limit: usize,
    ) -> impl Future<Output = Result<Result<Vec<Claimed>, Halt>, EngineError>> + Send;

    /// Records an outcome (batched: see `flush`).
    fn record(&self, record: Record);

    /// A subscriber who blocked the bot is deactivated.
    fn deactivate_subscriber(&self, chat: String);

    /// Deliveries of `channel` not final yet, when the next is due, and
    /// whether the alert is still being planned.
    fn unsettled(
        &self,
        channel: ChannelId,
    ) -> impl Future<Output = Result<Backlog, EngineError>> + Send;

    /// Waits until every recorded outcome is committed.
    fn flush(&self) -> impl Future<Output = Result<(), EngineError>> + Send;
}
