//! The engine's `dispatch::Queue` on PostgreSQL, for one worker on one
//! alert: what a lane would drive instead of the SQLite writer thread.
//! Claims go straight to the database; outcomes are batched by a task that
//! settles them at least every 100 ms (SPEC §7) or every 2,000 rows; a
//! second task renews the worker's leases every third of the lease, so a
//! slow send (a rate limit, a provider's timeout) keeps its claim. Outcomes
//! the worker could no longer write (its claim was taken over) are logged.
//! Not wired into the engine yet.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{PgError, PgLedger};
use crate::dispatch::{EngineError, Queue};
use crate::domain::ChannelId;
use crate::ledger::{Backlog, Claimed, Halt, Record};

const FLUSH_EVERY: Duration = Duration::from_millis(100);
const FLUSH_ROWS: usize = 2_000;

enum Msg {
    Record(Record),
    Deactivate(String),
    Flush(oneshot::Sender<Result<(), EngineError>>),
}

/// One worker's queue for one alert (cheap to clone: lanes share it).
#[derive(Clone)]
pub struct PgQueue {
    ledger: PgLedger,
    alert_id: Arc<str>,
    worker: Arc<str>,
    tx: mpsc::UnboundedSender<Msg>,
    /// The first error of the background tasks: nothing more may be
    /// claimed, since nothing more could be recorded.
    failed: Arc<Mutex<Option<EngineError>>>,
}

fn engine(e: PgError) -> EngineError {
    EngineError::Ledger(e.to_string())
}

impl PgQueue {
    /// Starts the batching and renewing tasks on the current runtime; they
    /// end when every clone of the queue is dropped.
    pub fn start(ledger: PgLedger, alert_id: &str, worker: &str) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Self {
            ledger,
            alert_id: alert_id.into(),
            worker: worker.into(),
            tx,
            failed: Arc::new(Mutex::new(None)),
        };
        tokio::spawn(batch(queue.clone_parts(), rx));
        tokio::spawn(renew(queue.clone_parts(), queue.tx.downgrade()));
        queue
    }

    fn clone_parts(&self) -> Parts {
        Parts {
            ledger: self.ledger.clone(),
            worker: self.worker.clone(),
            failed: self.failed.clone(),
        }
    }

    fn check(&self) -> Result<(), EngineError> {
        match self.failed.lock() {
            Ok(f) => f.clone().map_or(Ok(()), Err),
            Err(_) => Err(EngineError::Worker("the queue's lock is poisoned".into())),
        }
    }
}

/// What the background tasks share with the queue.
struct Parts {
    ledger: PgLedger,
    worker: Arc<str>,
    failed: Arc<Mutex<Option<EngineError>>>,
}

impl Parts {
    fn fail(&self, e: EngineError) {
        if let Ok(mut f) = self.failed.lock()
            && f.is_none()
        {
            *f = Some(e);
        }
    }

    async fn settle(&self, batch: &mut Vec<Record>) -> Result<(), EngineError> {
        if batch.is_empty() {
            return Ok(());
        }
        let settled = self
            .ledger
            .settle(&self.worker, batch)
            .await
            .map_err(engine)?;
        if !settled.stale.is_empty() {
            tracing::warn!(
                worker = &*self.worker,
                deliveries = ?settled.stale,
                "outcomes not recorded: another worker took these deliveries over"
            );
        }
        batch.clear();
        Ok(())
    }
}

async fn batch(parts: Parts, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut pending: Vec<Record> = Vec::new();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = tick.tick() => {
                if let Err(e) = parts.settle(&mut pending).await {
                    parts.fail(e);
                }
                continue;
            }
        };
        match msg {
            Some(Msg::Record(r)) => {
                pending.push(r);
                if pending.len() >= FLUSH_ROWS
                    && let Err(e) = parts.settle(&mut pending).await
                {
                    parts.fail(e);
                }
            }
            Some(Msg::Deactivate(chat)) => {
                if let Err(e) = parts.ledger.deactivate_subscriber(&chat).await {
                    parts.fail(engine(e));
                }
            }
            Some(Msg::Flush(reply)) => {
                let result = parts.settle(&mut pending).await;
                if let Err(e) = &result {
                    parts.fail(e.clone());
                }
                let _ = reply.send(result);
            }
            None => {
                if let Err(e) = parts.settle(&mut pending).await {
                    parts.fail(e);
                }
                return;
            }
        }
    }
}

async fn renew(parts: Parts, alive: mpsc::WeakUnboundedSender<Msg>) {
    let every = parts.ledger.lease() / 3;
    loop {
        tokio::time::sleep(every).await;
        if alive.upgrade().is_none() {
            return;
        }
        if let Err(e) = parts.ledger.renew(&parts.worker).await {
            parts.fail(engine(e));
        }
    }
}

impl Queue for PgQueue {
    async fn claim(
        &self,
        channel: ChannelId,
        limit: usize,
    ) -> Result<Result<Vec<Claimed>, Halt>, EngineError> {
        self.check()?;
        let claims = self
            .ledger
            .claim(&self.alert_id, &self.worker, channel, limit)
            .await
            .map_err(engine)?;
        Ok(claims.map(|claims| {
            claims
                .into_iter()
                .map(|c| {
                    if let Some(from) = &c.taken_over_from {
                        tracing::info!(
                            delivery = c.delivery.id,
                            from = from.as_str(),
                            "lease expired: taken over, re-sent"
                        );
                    }
                    c.delivery
                })
                .collect()
        }))
    }

    fn record(&self, record: Record) {
        if self.tx.send(Msg::Record(record)).is_err() {
            tracing::error!("the queue's batching task has ended: an outcome is not recorded");
        }
    }

    fn deactivate_subscriber(&self, chat: String) {
        let _ = self.tx.send(Msg::Deactivate(chat));
    }

    async fn unsettled(&self, channel: ChannelId) -> Result<Backlog, EngineError> {
        self.ledger
            .unsettled(&self.alert_id, channel)
            .await
            .map_err(engine)
    }

    async fn flush(&self) -> Result<(), EngineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Flush(reply))
            .map_err(|_| EngineError::Worker("the queue's batching task has ended".into()))?;
        rx.await
            .map_err(|_| EngineError::Worker("the queue's batching task has ended".into()))??;
        self.check()
    }
}

impl PgLedger {
    /// A subscriber who blocked the bot stops receiving (SPEC §8.1).
    pub async fn deactivate_subscriber(&self, chat: &str) -> Result<(), PgError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE subscribers SET active = false, updated_at = now()
                 WHERE chat_id = $1 AND active",
                &[&chat],
            )
            .await?;
        Ok(())
    }
}
