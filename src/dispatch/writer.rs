//! The ledger's writer thread. SQLite is synchronous and wants one writer:
//! every claim and outcome of a run goes through this thread, which commits
//! outcomes in batches (at least every 100 ms, SPEC §7) so the ledger never
//! becomes the bottleneck and a crash loses at most that window. It also
//! plans what is left of a plan in chunks, between claims, so the first
//! messages never wait for a large audience to be planned.

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::domain::ChannelId;
use crate::ledger::{Backlog, Chunk, Claimed, Halt, Ledger, LedgerError, Record};

const FLUSH_EVERY: Duration = Duration::from_millis(100);
const FLUSH_ROWS: usize = 2000;
/// While the alert is still being planned and the queue is busy, a chunk
/// is planned at least this often (at once whenever the queue is idle).
const PLAN_EVERY: Duration = Duration::from_millis(10);
/// No request for this long while planning: the queue is idle, plan on.
const PLAN_IDLE: Duration = Duration::from_millis(1);

enum Command {
    Claim {
        channel: ChannelId,
        limit: usize,
        reply: oneshot::Sender<Result<Result<Vec<Claimed>, Halt>, String>>,
    },
    Record(Record),
    Unsettled {
        channel: ChannelId,
        reply: oneshot::Sender<Result<Backlog, String>>,
    },
    Flush(oneshot::Sender<Result<(), String>>),
    /// A bot subscriber (chat id) who blocked the bot.
    DeactivateSubscriber(String),
}

/// A handle to the writer thread of one alert's run.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
}

impl Writer {
    /// Starts the thread; it owns `ledger` until every handle is dropped.
    /// Outcomes are committed in batches (`Ledger::batched`); the plan was
    /// committed durably before.
    /// `rates`: each paced channel's `rate_per_second`, which on PostgreSQL
    /// holds for every worker of the deployment together (SPEC §18).
    pub fn spawn(
        ledger: Ledger,
        alert_id: String,
        lease_owner: String,
        rates: HashMap<ChannelId, f64>,
    ) -> (Self, thread::JoinHandle<Result<Ledger, LedgerError>>) {
        let (tx, rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                let mut ledger = ledger.batched()?;
                run(&mut ledger, &alert_id, &lease_owner, &rates, rx)?;
                Ok(ledger)
            })
            .expect("spawning a thread only fails when the OS is out of resources");
        (Self { tx }, handle)
    }

    /// The next deliveries to send, or why this process must stop sending
    /// the alert (cancelled, paused, lease lost).
    pub async fn claim(
        &self,
        channel: ChannelId,
        limit: usize,
    ) -> Result<Result<Vec<Claimed>, Halt>, String> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Claim {
            channel,
            limit,
            reply,
        })?;
        rx.await.map_err(|_| "ledger writer stopped".to_owned())?
    }

    pub fn record(&self, record: Record) {
        // If the writer is gone the run is failing anyway; the delivery stays
        // `sending` and `resume` re-sends it.
        let _ = self.tx.send(Command::Record(record));
    }

    pub fn deactivate_subscriber(&self, chat: String) {
        let _ = self.tx.send(Command::DeactivateSubscriber(chat));
    }

    pub async fn unsettled(&self, channel: ChannelId) -> Result<Backlog, String> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Unsettled { channel, reply })?;
        rx.await.map_err(|_| "ledger writer stopped".to_owned())?
    }

    pub async fn flush(&self) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Flush(reply))?;
        rx.await.map_err(|_| "ledger writer stopped".to_owned())?
    }

    fn send(&self, command: Command) -> Result<(), String> {
        self.tx
            .send(command)
            .map_err(|_| "ledger writer stopped".to_owned())
    }
}

fn run(
    ledger: &mut Ledger,
    alert_id: &str,
    owner: &str,
    rates: &HashMap<ChannelId, f64>,
    rx: mpsc::Receiver<Command>,
) -> Result<(), LedgerError> {
    // On SQLite this process is the alert's only sender and its lanes pace
    // themselves; on PostgreSQL the slots are shared through the database.
    let shared_rates = ledger.is_postgres();
    let mut batch: Vec<Record> = Vec::with_capacity(FLUSH_ROWS);
    let mut oldest: Option<Instant> = None;
    let mut last_lease = Instant::now();
    let mut failure: Option<String> = None;
    // A pending plan is finished here, between claims and outcomes: one
    // writer, so neither waits on the other's lock (SPEC §10).
    let mut planning = ledger.planning_pending(alert_id)?;
    // The lanes' first claims come before the first chunk.
    let mut idle = false;
    let mut last_chunk = Instant::now();
    loop {
        if planning && (idle || last_chunk.elapsed() >= PLAN_EVERY) {
            planning = plan_chunk(ledger, alert_id, &mut failure);
            last_chunk = Instant::now();
        }
        let wait = if planning {
            PLAN_IDLE
        } else {
            oldest.map_or(Duration::from_secs(1), |t| {
                FLUSH_EVERY.saturating_sub(t.elapsed())
            })
        };
        let received = rx.recv_timeout(wait);
        idle = matches!(received, Err(mpsc::RecvTimeoutError::Timeout));
        let command = match received {
            Ok(c) => Some(c),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                persist(|| ledger.record(owner, &batch))?;
                return Ok(());
            }
        };
        let must_flush = match &command {
            Some(Command::Record(_)) => batch.len() + 1 >= FLUSH_ROWS,
            _ => true,
        };
        if let Some(Command::Record(r)) = command {
            batch.push(r);
            oldest.get_or_insert_with(Instant::now);
            if !must_flush && oldest.is_some_and(|t| t.elapsed() < FLUSH_EVERY) {
                continue;
            }
            flush(ledger, owner, &mut batch, &mut failure);
            oldest = None;
            continue;
        }
        flush(ledger, owner, &mut batch, &mut failure);
        oldest = None;
        if last_lease.elapsed() > Duration::from_secs(10) {
            // A lost lease is noticed by the next claim, which checks the
            // holder in its own transaction.
            if let Ok(false) = ledger.renew_lease(alert_id, owner, Duration::from_secs(60)) {
                tracing::warn!(alert_id, "lease lost: another process holds this alert");
            }
            last_lease = Instant::now();
        }
        match command {
            Some(Command::Claim {
                channel,
                limit,
                reply,
            }) => {
                let r = failed(&failure).unwrap_or_else(|| {
                    let mut r = persist(|| ledger.claim(alert_id, owner, channel, limit));
                    if let (Ok(Ok(batch)), Some(rate), true) =
                        (&mut r, rates.get(&channel), shared_rates)
                    {
                        r = slots(ledger, channel, *rate, batch)
                            .map(|()| Ok(std::mem::take(batch)));
                    }
                    r.map_err(|e| e.to_string())
                });
                let _ = reply.send(r);
            }
            Some(Command::Unsettled { channel, reply }) => {
                let r = failed(&failure).unwrap_or_else(|| {
                    persist(|| ledger.unsettled(alert_id, channel)).map_err(|e| e.to_string())
                });
                let _ = reply.send(r);
            }
            Some(Command::Flush(reply)) => {
                let _ = reply.send(failed(&failure).unwrap_or(Ok(())));
            }
            Some(Command::DeactivateSubscriber(chat)) => {
                // The same as the bot's `/stop`.
                if let Err(e) = ledger.stop_subscriber(&chat) {
                    tracing::error!(error = %e, "cannot deactivate subscriber");
                }
            }
            Some(Command::Record(_)) | None => {}
        }
    }
}

/// Gives each claimed delivery its send slot under the channel's
/// deployment-wide rate.
fn slots(
    ledger: &Ledger,
    channel: ChannelId,
    rate: f64,
    batch: &mut [Claimed],
) -> Result<(), LedgerError> {
    if batch.is_empty() {
        return Ok(());
    }
    let interval = ((1e6 / rate).round() as i64).max(1);
    let (first, made) = persist(|| ledger.reserve_slots(channel, batch.len(), interval, None))?;
    // The slots are in the database's clock; waited for by this one's.
    let offset = chrono::Utc::now().timestamp_micros() - made;
    for (i, c) in batch.iter_mut().enumerate() {
        c.not_before_us = Some(first + offset + i as i64 * interval);
    }
    Ok(())
}

/// Plans the next chunk of the alert; returns whether more is pending. A
/// failure is the run's failure: what is planned stays, `resume` plans the
/// rest.
fn plan_chunk(ledger: &mut Ledger, alert_id: &str, failure: &mut Option<String>) -> bool {
    match persist(|| ledger.plan_chunk(alert_id)) {
        Ok(Chunk::More(_)) => true,
        Ok(Chunk::Complete(_)) => false,
        Err(e) => {
            tracing::error!(error = %e, "cannot plan the rest of the alert");
            failure.get_or_insert_with(|| format!("cannot plan the rest of the alert: {e}"));
            false
        }
    }
}

/// How long the writer keeps trying a database that went away (SPEC §18),
/// `ALLERTA_DB_RETRY` (e.g. `5s`) for tests. The lanes wait for its
/// answers meanwhile: nothing is sent that could not be recorded.
fn retry_window() -> Duration {
    static WINDOW: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *WINDOW.get_or_init(|| {
        std::env::var("ALLERTA_DB_RETRY")
            .ok()
            .and_then(|v| humantime::parse_duration(&v).ok())
            .unwrap_or(Duration::from_secs(120))
    })
}

/// `op`, again with backoff (¼ s doubling to 5 s) while the database
/// connection is lost, for up to [`retry_window`]; other errors at once.
/// On PostgreSQL the next statement reconnects through the URL's hosts,
/// which is how a promoted standby takes over.
fn persist<T>(mut op: impl FnMut() -> Result<T, LedgerError>) -> Result<T, LedgerError> {
    let window = retry_window();
    let start = Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        match op() {
            Err(e) if e.is_connection_lost() && start.elapsed() < window => {
                tracing::warn!(error = %e, "database unreachable: sending stopped, trying again");
                std::thread::sleep(pause.min(window.saturating_sub(start.elapsed())));
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// The first recording failure, reported to every later request.
fn failed<T>(failure: &Option<String>) -> Option<Result<T, String>> {
    failure.clone().map(Err)
}

fn flush(ledger: &mut Ledger, owner: &str, batch: &mut Vec<Record>, failure: &mut Option<String>) {
    if batch.is_empty() {
        return;
    }
    if let Err(e) = persist(|| ledger.record(owner, batch)) {
        tracing::error!(error = %e, rows = batch.len(), "cannot record delivery outcomes");
        failure.get_or_insert_with(|| format!("cannot record delivery outcomes: {e}"));
    }
    batch.clear();
}

impl super::Queue for Writer {
    async fn claim(
        &self,
        channel: ChannelId,
        limit: usize,
    ) -> Result<Result<Vec<Claimed>, Halt>, super::EngineError> {
        Writer::claim(self, channel, limit)
            .await
            .map_err(super::EngineError::Ledger)
    }

    fn record(&self, record: Record) {
        Writer::record(self, record);
    }

    fn deactivate_subscriber(&self, chat: String) {
        Writer::deactivate_subscriber(self, chat);
    }

    async fn unsettled(&self, channel: ChannelId) -> Result<Backlog, super::EngineError> {
        Writer::unsettled(self, channel)
            .await
            .map_err(super::EngineError::Ledger)
    }

    async fn flush(&self) -> Result<(), super::EngineError> {
        Writer::flush(self)
            .await
            .map_err(super::EngineError::Ledger)
    }
}
