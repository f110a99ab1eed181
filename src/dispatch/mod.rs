//! The engine: one lane per channel, each claiming pending deliveries from
//! the ledger, sending them with bounded concurrency and even pacing, and
//! handing outcomes to the writer thread. Errors are already classified by
//! the channel; the engine only applies the retry policy.

pub mod queue;
pub mod rate;
pub mod retry;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::channel::{AlertContext, Channel, Delivery, DeliveryError, Message, Recipient};
use crate::config::Retry;
use crate::domain::ChannelId;
use crate::ledger::{Claimed, Outcome, Record, now_ms};
pub use queue::{EngineError, Queue};
use rate::Pacer;
use retry::Decision;
pub use writer::Writer;

/// How one attempt ended, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Sent,
    Failed,
    Retrying,
}

/// Receives progress from the engine (bars on a terminal, nothing else).
pub trait Progress: Send + Sync {
    fn lane_started(&self, channel: ChannelId, unsettled: u64, description: &str);
    fn step(&self, channel: ChannelId, step: Step);
    fn lane_finished(&self, channel: ChannelId, stopped: Option<&str>);
}

pub struct NoProgress;

impl Progress for NoProgress {
    fn lane_started(&self, _: ChannelId, _: u64, _: &str) {}
    fn step(&self, _: ChannelId, _: Step) {}
    fn lane_finished(&self, _: ChannelId, _: Option<&str>) {}
}

/// How a run ended for each channel.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Channels stopped by a channel-level error, with the reason.
    pub stopped: BTreeMap<ChannelId, String>,
    pub interrupted: bool,
    /// The alert itself stopped being sendable by this process (cancelled,
    /// paused, lease lost): why.
    pub halted: Option<String>,
}

pub struct Engine<Q: Queue> {
    pub writer: Q,
    pub retry: Retry,
    pub progress: Arc<dyn Progress>,
    pub shutdown: CancellationToken,
}

impl<Q: Queue> Engine<Q> {
    /// Sends every unsettled delivery of the alert on the given channels and
    /// returns when each lane is settled, stopped or interrupted.
    pub async fn run(
        &self,
        alert: Arc<AlertContext>,
        channels: Vec<Arc<dyn Channel>>,
    ) -> Result<RunReport, EngineError> {
        let mut lanes = tokio::task::JoinSet::new();
        for channel in channels {
            let lane = Lane {
                writer: self.writer.clone(),
                retry: self.retry.clone(),
                progress: self.progress.clone(),
                shutdown: self.shutdown.clone(),
                alert: alert.clone(),
                channel,
            };
            lanes.spawn(lane.run());
        }
        let mut report = RunReport::default();
        while let Some(joined) = lanes.join_next().await {
            let (channel, outcome) = joined.map_err(|e| EngineError::Worker(e.to_string()))?;
            match outcome? {
                LaneEnd::Settled => {}
                LaneEnd::Stopped(reason) => {
                    report.stopped.insert(channel, reason);
                }
                LaneEnd::Interrupted => report.interrupted = true,
                LaneEnd::Halted(reason) => {
                    report.halted.get_or_insert(reason);
                }
            }
        }
        self.writer.flush().await?;
        Ok(report)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum LaneEnd {
    Settled,
    Stopped(String),
    Interrupted,
    Halted(String),
}

/// What one turn of a lane did.
#[derive(Debug, PartialEq, Eq)]
enum Turn {
    /// Started this many sends (or released them, when stopping).
    Started(usize),
    /// Nothing could start now; waited for a send in flight or a retry.
    Waited,
    End(LaneEnd),
}

struct Lane<Q: Queue> {
    writer: Q,
    retry: Retry,
    progress: Arc<dyn Progress>,
    shutdown: CancellationToken,
    alert: Arc<AlertContext>,
    channel: Arc<dyn Channel>,
}

/// A lane's working state between turns.
struct LaneState {
    concurrency: usize,
    permits: Arc<Semaphore>,
    pacer: Option<Arc<Pacer>>,
    /// Set by the first send that finds the channel down.
    stop: Arc<Mutex<Option<String>>>,
}

impl LaneState {
    fn stopped(&self) -> Option<String> {
        self.stop.lock().map(|s| s.clone()).unwrap_or(None)
    }

    fn in_flight(&self) -> bool {
        self.permits.available_permits() < self.concurrency
    }
}

/// Longest idle wait before re-checking the ledger (retries due, shutdown).
const MAX_IDLE: Duration = Duration::from_secs(5);

/// How often an idle lane looks for rows a pending plan has added.
const PLANNING_POLL: Duration = Duration::from_millis(20);

impl<Q: Queue> Lane<Q> {
    #[tracing::instrument(skip_all, fields(alert_id = %self.alert.id, channel = %self.channel.id()))]
    async fn run(self) -> (ChannelId, Result<LaneEnd, EngineError>) {
        let id = self.channel.id();
        let result = self.run_inner().await;
        let stopped = match &result {
            Ok(LaneEnd::Stopped(reason)) => Some(reason.clone()),
            Ok(LaneEnd::Interrupted) => Some("interrupted".to_owned()),
            Ok(LaneEnd::Halted(reason)) => Some(reason.clone()),
            Err(e) => Some(e.to_string()),
            Ok(LaneEnd::Settled) => None,
        };
        self.progress.lane_finished(id, stopped.as_deref());
        (id, result)
    }

    /// The thin loop: turns until the lane ends.
    async fn run_inner(&self) -> Result<LaneEnd, EngineError> {
        let mut state = self.start().await?;
        loop {
            if let Turn::End(end) = self.turn(&mut state).await? {
                return Ok(end);
            }
        }
    }

    async fn start(&self) -> Result<LaneState, EngineError> {
        let concurrency = self.channel.concurrency().max(1);
        let backlog = self.writer.unsettled(self.channel.id()).await?;
        self.progress
            .lane_started(self.channel.id(), backlog.left, &self.channel.describe());
        Ok(LaneState {
            concurrency,
            permits: Arc::new(Semaphore::new(concurrency)),
            pacer: self
                .channel
                .rate_per_second()
                .map(|r| Arc::new(Pacer::new(r))),
            stop: Arc::new(Mutex::new(None)),
        })
    }

    /// One turn: end the lane if it must end, else claim what can start
    /// now and start it, else wait for something to change.
    async fn turn(&self, st: &mut LaneState) -> Result<Turn, EngineError> {
        let channel_id = self.channel.id();
        if let Some(reason) = st.stopped() {
            self.drain(st).await;
            return Ok(Turn::End(LaneEnd::Stopped(reason)));
        }
        if self.shutdown.is_cancelled() {
            self.drain(st).await;
            return Ok(Turn::End(LaneEnd::Interrupted));
        }
        // Claim only what can be started now: rows in `sending` are the
        // duplicates a crash could cause, so keep them few.
        let first = tokio::select! {
            p = st.permits.clone().acquire_owned() => p.map_err(|e| EngineError::Worker(e.to_string()))?,
            () = self.shutdown.cancelled() => return Ok(Turn::Waited),
        };
        let free = st.permits.available_permits() + 1;
        let batch = match self.writer.claim(channel_id, free.min(256)).await? {
            Ok(batch) => batch,
            Err(halt) => {
                drop(first);
                self.drain(st).await;
                return Ok(Turn::End(LaneEnd::Halted(halt.to_string())));
            }
        };
        if batch.is_empty() {
            drop(first);
            return self.idle(st).await;
        }
        let started = batch.len();
        let mut first = Some(first);
        for claimed in batch {
            let permit = match first.take() {
                Some(p) => p,
                None => st
                    .permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| EngineError::Worker(e.to_string()))?,
            };
            self.start_one(st, claimed, permit).await;
        }
        Ok(Turn::Started(started))
    }

    /// Paces and spawns one send, or releases the delivery unattempted when
    /// the lane is stopping.
    async fn start_one(&self, st: &LaneState, claimed: Claimed, permit: OwnedSemaphorePermit) {
        let stopping = st.stopped().or_else(|| {
            self.shutdown
                .is_cancelled()
                .then(|| "interrupted".to_owned())
        });
        if let Some(reason) = stopping {
            self.writer.record(Record {
                delivery_id: claimed.id,
                at_ms: now_ms(),
                outcome: Outcome::Released {
                    reason: format!("not attempted: {reason}"),
                },
            });
            return;
        }
        if let Some(p) = &st.pacer {
            p.wait().await;
        }
        if let Some(slot) = claimed.not_before_us {
            // The deployment-wide slot (PostgreSQL: other workers share the
            // channel's rate), in wall-clock time: workers' clocks are kept
            // by NTP.
            let wait = slot - chrono::Utc::now().timestamp_micros();
            if wait > 0 {
                tokio::time::sleep(Duration::from_micros(wait as u64)).await;
            }
        }
        let task = Attempt {
            writer: self.writer.clone(),
            retry: self.retry.clone(),
            progress: self.progress.clone(),
            alert: self.alert.clone(),
            channel: self.channel.clone(),
            stop: st.stop.clone(),
        };
        tokio::spawn(async move {
            task.run(claimed).await;
            drop(permit);
        });
    }

    /// Nothing to claim: settled, or wait for sends in flight or the next
    /// retry.
    async fn idle(&self, st: &LaneState) -> Result<Turn, EngineError> {
        let channel_id = self.channel.id();
        if st.in_flight() {
            // Sends in flight: their outcomes may settle the lane.
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
                () = self.shutdown.cancelled() => {}
            }
            return Ok(Turn::Waited);
        }
        self.writer.flush().await?;
        let backlog = self.writer.unsettled(channel_id).await?;
        if backlog.left == 0 && !backlog.planning {
            return Ok(Turn::End(LaneEnd::Settled));
        }
        let due = backlog
            .next_due
            .map(|due| Duration::from_millis((due - now_ms()).max(10) as u64))
            .unwrap_or(MAX_IDLE);
        // While the alert is being planned, the next chunk may bring rows
        // for this channel at any moment.
        let wait = if backlog.planning {
            due.min(PLANNING_POLL)
        } else {
            due.min(MAX_IDLE)
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = self.shutdown.cancelled() => {}
        }
        Ok(Turn::Waited)
    }

    /// Waits for every send in flight to finish.
    async fn drain(&self, st: &LaneState) {
        let _ = st.permits.acquire_many(st.concurrency as u32).await;
    }
}

struct Attempt<Q: Queue> {
    writer: Q,
    retry: Retry,
    progress: Arc<dyn Progress>,
    alert: Arc<AlertContext>,
    channel: Arc<dyn Channel>,
    stop: Arc<Mutex<Option<String>>>,
}

/// The channel's view of a claimed delivery.
fn delivery_of(c: &Claimed) -> Delivery {
    Delivery {
        id: c.id,
        address: c.address.clone(),
        recipient: c.recipient.clone(),
        language: c.language.clone(),
        attempts: c.attempts,
        token: c.token.clone(),
    }
}

impl<Q: Queue> Attempt<Q> {
    async fn run(self, claimed: Claimed) {
        let delivery = delivery_of(&claimed);
        let channel_id = self.channel.id();
        let Some(content) = self.alert.rendered.text(channel_id, &delivery.language) else {
            self.finish(
                &delivery,
                Outcome::Failed {
                    error: "the template has no text for this channel".into(),
                },
                Step::Failed,
            );
            return;
        };
        let message = Message {
            alert: &self.alert,
            delivery: &delivery,
            content,
        };
        let result = self.channel.send(&message).await;
        let (outcome, step) = match result {
            Ok(accepted) if accepted.delivered => (
                Outcome::Delivered {
                    provider_id: accepted.provider_id,
                },
                Step::Sent,
            ),
            Ok(accepted) => (
                Outcome::Sent {
                    provider_id: accepted.provider_id,
                },
                Step::Sent,
            ),
            Err(DeliveryError::Permanent {
                reason,
                recipient_gone,
            }) => {
                if recipient_gone && let Recipient::Subscriber(chat) = &delivery.recipient {
                    self.writer.deactivate_subscriber(chat.clone());
                }
                (Outcome::Failed { error: reason }, Step::Failed)
            }
            Err(DeliveryError::Transient {
                reason,
                retry_after,
            }) => {
                let attempt = delivery.attempts + 1;
                match retry::decide(&self.retry, attempt, retry_after, rand::random::<f64>()) {
                    Decision::RetryIn(wait) => {
                        tracing::debug!(delivery = delivery.id, attempt, ?wait, %reason, "transient failure, will retry");
                        (
                            Outcome::Retry {
                                at_ms: now_ms() + wait.as_millis() as i64,
                                error: reason,
                            },
                            Step::Retrying,
                        )
                    }
                    Decision::GiveUp => (
                        Outcome::Failed {
                            error: format!("gave up after {attempt} attempts: {reason}"),
                        },
                        Step::Failed,
                    ),
                }
            }
            Err(DeliveryError::ChannelDown { reason }) => {
                tracing::error!(%reason, "channel stopped");
                if let Ok(mut s) = self.stop.lock() {
                    s.get_or_insert(reason.clone());
                }
                (
                    Outcome::Released {
                        reason: format!("channel stopped: {reason}"),
                    },
                    Step::Retrying,
                )
            }
        };
        self.finish(&delivery, outcome, step);
    }

    fn finish(&self, delivery: &Delivery, outcome: Outcome, step: Step) {
        self.writer.record(Record {
            delivery_id: delivery.id,
            at_ms: now_ms(),
            outcome,
        });
        self.progress.step(self.channel.id(), step);
    }
}

#[cfg(test)]
mod tests;
