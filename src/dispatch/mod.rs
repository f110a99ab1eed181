//! The engine: one lane per channel, each claiming pending deliveries from
//! the ledger, sending them with bounded concurrency and even pacing, and
//! handing outcomes to the writer thread. Errors are already classified by
//! the channel; the engine only applies the retry policy.

pub mod rate;
pub mod retry;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::channel::{AlertContext, Channel, DeliveryError, Message};
use crate::config::Retry;
use crate::domain::ChannelId;
use crate::ledger::{Claimed, Outcome, Record, now_ms};
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

pub struct Engine {
    pub writer: Writer,
    pub retry: Retry,
    pub progress: Arc<dyn Progress>,
    pub shutdown: CancellationToken,
}

impl Engine {
    /// Sends every unsettled delivery of the alert on the given channels and
    /// returns when each lane is settled, stopped or interrupted.
    pub async fn run(
        &self,
        alert: Arc<AlertContext>,
        channels: Vec<Arc<dyn Channel>>,
    ) -> Result<RunReport, String> {
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
            let (channel, outcome) = joined.map_err(|e| format!("channel worker crashed: {e}"))?;
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

enum LaneEnd {
    Settled,
    Stopped(String),
    Interrupted,
    Halted(String),
}

struct Lane {
    writer: Writer,
    retry: Retry,
    progress: Arc<dyn Progress>,
    shutdown: CancellationToken,
    alert: Arc<AlertContext>,
    channel: Arc<dyn Channel>,
}

/// Longest idle wait before re-checking the ledger (retries due, shutdown).
const MAX_IDLE: Duration = Duration::from_secs(5);

impl Lane {
    #[tracing::instrument(skip_all, fields(alert_id = %self.alert.id, channel = %self.channel.id()))]
    async fn run(self) -> (ChannelId, Result<LaneEnd, String>) {
        let id = self.channel.id();
        let result = self.run_inner().await;
        let stopped = match &result {
            Ok(LaneEnd::Stopped(reason)) => Some(reason.as_str()),
            Ok(LaneEnd::Interrupted) => Some("interrupted"),
            Ok(LaneEnd::Halted(reason)) => Some(reason.as_str()),
            Err(e) => Some(e.as_str()),
            Ok(LaneEnd::Settled) => None,
        };
        self.progress.lane_finished(id, stopped);
        (id, result)
    }

    async fn run_inner(&self) -> Result<LaneEnd, String> {
        let channel_id = self.channel.id();
        let concurrency = self.channel.concurrency().max(1);
        let (unsettled, _) = self.writer.unsettled(channel_id).await?;
        self.progress
            .lane_started(channel_id, unsettled, &self.channel.describe());
        let permits = Arc::new(Semaphore::new(concurrency));
        let pacer = self
            .channel
            .rate_per_second()
            .map(|r| Arc::new(Pacer::new(r)));
        let stop: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let stopped = |stop: &Mutex<Option<String>>| stop.lock().map(|s| s.clone()).unwrap_or(None);

        loop {
            if let Some(reason) = stopped(&stop) {
                self.drain(&permits, concurrency).await;
                return Ok(LaneEnd::Stopped(reason));
            }
            if self.shutdown.is_cancelled() {
                self.drain(&permits, concurrency).await;
                return Ok(LaneEnd::Interrupted);
            }
            // Claim only what can be started now: rows in `sending` are the
            // duplicates a crash could cause, so keep them few.
            let first = tokio::select! {
                p = permits.clone().acquire_owned() => p.map_err(|e| e.to_string())?,
                () = self.shutdown.cancelled() => continue,
            };
            let free = permits.available_permits() + 1;
            let batch = match self.writer.claim(channel_id, free.min(256)).await? {
                Ok(batch) => batch,
                Err(halt) => {
                    drop(first);
                    self.drain(&permits, concurrency).await;
                    return Ok(LaneEnd::Halted(halt.to_string()));
                }
            };
            if batch.is_empty() {
                drop(first);
                if permits.available_permits() < concurrency {
                    // Sends in flight: their outcomes may settle the lane.
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(20)) => {}
                        () = self.shutdown.cancelled() => {}
                    }
                    continue;
                }
                self.writer.flush().await?;
                let (left, next_due) = self.writer.unsettled(channel_id).await?;
                if left == 0 {
                    return Ok(LaneEnd::Settled);
                }
                let wait = next_due
                    .map(|due| Duration::from_millis((due - now_ms()).max(10) as u64))
                    .unwrap_or(MAX_IDLE)
                    .min(MAX_IDLE);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = self.shutdown.cancelled() => {}
                }
                continue;
            }
            let mut first = Some(first);
            for delivery in batch {
                let permit = match first.take() {
                    Some(p) => p,
                    None => permits
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|e| e.to_string())?,
                };
                if let Some(reason) = stopped(&stop).or_else(|| {
                    self.shutdown
                        .is_cancelled()
                        .then(|| "interrupted".to_owned())
                }) {
                    self.writer.record(Record {
                        delivery_id: delivery.id,
                        at_ms: now_ms(),
                        outcome: Outcome::Released {
                            reason: format!("not attempted: {reason}"),
                        },
                    });
                    continue;
                }
                if let Some(p) = &pacer {
                    p.wait().await;
                }
                let task = Attempt {
                    writer: self.writer.clone(),
                    retry: self.retry.clone(),
                    progress: self.progress.clone(),
                    alert: self.alert.clone(),
                    channel: self.channel.clone(),
                    stop: stop.clone(),
                };
                tokio::spawn(async move {
                    task.run(delivery).await;
                    drop(permit);
                });
            }
        }
    }

    /// Waits for every send in flight to finish.
    async fn drain(&self, permits: &Arc<Semaphore>, concurrency: usize) {
        let _ = permits.acquire_many(concurrency as u32).await;
    }
}

struct Attempt {
    writer: Writer,
    retry: Retry,
    progress: Arc<dyn Progress>,
    alert: Arc<AlertContext>,
    channel: Arc<dyn Channel>,
    stop: Arc<Mutex<Option<String>>>,
}

impl Attempt {
    async fn run(self, delivery: Claimed) {
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
                if recipient_gone && let Some(r) = &delivery.recipient {
                    self.writer.deactivate_subscriber(r.clone());
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

    fn finish(&self, delivery: &Claimed, outcome: Outcome, step: Step) {
        self.writer.record(Record {
            delivery_id: delivery.id,
            at_ms: now_ms(),
            outcome,
        });
        self.progress.step(self.channel.id(), step);
    }
}
