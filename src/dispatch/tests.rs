//! The lane against a fake channel and an in-memory queue, on tokio's
//! paused clock: sends, retries, a channel going down, a halt, pacing and
//! shutdown, without a database or a network.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::channel::{Accepted, SendFuture};
use crate::domain::{CapStatus, MsgType};
use crate::ledger::{AlertState, Backlog, Halt};
use crate::template::{CapMeta, ChannelText, Rendered};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Sending,
    Done,
    Failed,
}

struct Row {
    claimed: Claimed,
    state: State,
    due: Instant,
}

#[derive(Default)]
struct Inner {
    rows: Vec<Row>,
    halt: Option<Halt>,
    /// A plan still pending: more rows may be added.
    planning: bool,
}

/// An in-memory queue with the ledger's semantics.
#[derive(Clone, Default)]
struct FakeQueue(Arc<Mutex<Inner>>);

impl FakeQueue {
    fn with(n: usize) -> Self {
        let q = Self::default();
        q.add(1..=n as i64);
        q
    }

    /// Plans more rows (a later chunk of a pending plan).
    fn add(&self, ids: std::ops::RangeInclusive<i64>) {
        let now = Instant::now();
        self.0.lock().unwrap().rows.extend(ids.map(|id| Row {
            claimed: Claimed {
                id,
                address: format!("+39333{id:07}"),
                recipient: Recipient::Contact(format!("c{id}")),
                language: "it".into(),
                attempts: 0,
                token: "t".into(),
                not_before_us: None,
            },
            state: State::Pending,
            due: now,
        }));
    }

    fn set_planning(&self, planning: bool) {
        self.0.lock().unwrap().planning = planning;
    }

    fn count(&self, state: State) -> usize {
        self.0
            .lock()
            .unwrap()
            .rows
            .iter()
            .filter(|r| r.state == state)
            .count()
    }

    fn halt(&self, halt: Halt) {
        self.0.lock().unwrap().halt = Some(halt);
    }
}

impl Queue for FakeQueue {
    async fn claim(
        &self,
        _: ChannelId,
        limit: usize,
    ) -> Result<Result<Vec<Claimed>, Halt>, EngineError> {
        let mut inner = self.0.lock().unwrap();
        if let Some(h) = &inner.halt {
            return Ok(Err(h.clone()));
        }
        let now = Instant::now();
        let mut out = Vec::new();
        for r in inner.rows.iter_mut() {
            if out.len() == limit {
                break;
            }
            if r.state == State::Pending && r.due <= now {
                r.state = State::Sending;
                out.push(r.claimed.clone());
            }
        }
        Ok(Ok(out))
    }

    fn record(&self, record: Record) {
        let mut inner = self.0.lock().unwrap();
        let Some(r) = inner
            .rows
            .iter_mut()
            .find(|r| r.claimed.id == record.delivery_id)
        else {
            return;
        };
        match record.outcome {
            Outcome::Sent { .. } | Outcome::Delivered { .. } => {
                r.state = State::Done;
                r.claimed.attempts += 1;
            }
            Outcome::Retry { at_ms, .. } => {
                r.state = State::Pending;
                r.claimed.attempts += 1;
                r.due = Instant::now() + Duration::from_millis((at_ms - now_ms()).max(0) as u64);
            }
            Outcome::Failed { .. } => {
                r.state = State::Failed;
                r.claimed.attempts += 1;
            }
            Outcome::Released { .. } => r.state = State::Pending,
        }
    }

    fn deactivate_subscriber(&self, _: String) {}

    async fn unsettled(&self, _: ChannelId) -> Result<Backlog, EngineError> {
        let inner = self.0.lock().unwrap();
        let open: Vec<&Row> = inner
            .rows
            .iter()
            .filter(|r| matches!(r.state, State::Pending | State::Sending))
            .collect();
        let now = Instant::now();
        let next = open
            .iter()
            .filter(|r| r.state == State::Pending)
            .map(|r| now_ms() + r.due.saturating_duration_since(now).as_millis() as i64)
            .min();
        Ok(Backlog {
            left: open.len() as u64,
            next_due: next,
            planning: inner.planning,
        })
    }

    async fn flush(&self) -> Result<(), EngineError> {
        Ok(())
    }
}

/// What the fake provider does with each attempt.
#[derive(Clone, Copy)]
enum Script {
    Accept,
    /// The first attempt of every delivery fails transiently.
    FlakyOnce,
    /// Every delivery after the first `n` finds the channel down.
    DownAfter(usize),
}

struct FakeChannel {
    script: Script,
    concurrency: usize,
    rate: Option<f64>,
    latency: Duration,
    sends: AtomicUsize,
    times: Mutex<Vec<Instant>>,
    per_delivery: Mutex<HashMap<i64, u32>>,
}

impl FakeChannel {
    fn new(script: Script) -> Self {
        Self {
            script,
            concurrency: 4,
            rate: None,
            latency: Duration::from_millis(10),
            sends: AtomicUsize::new(0),
            times: Mutex::new(Vec::new()),
            per_delivery: Mutex::new(HashMap::new()),
        }
    }
}

impl Channel for FakeChannel {
    fn id(&self) -> ChannelId {
        ChannelId::Sms
    }

    fn describe(&self) -> String {
        "fake".into()
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn rate_per_second(&self) -> Option<f64> {
        self.rate
    }

    fn send<'a>(&'a self, m: &'a Message<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let n = self.sends.fetch_add(1, Ordering::SeqCst);
            self.times.lock().unwrap().push(Instant::now());
            *self
                .per_delivery
                .lock()
                .unwrap()
                .entry(m.delivery.id)
                .or_default() += 1;
            tokio::time::sleep(self.latency).await;
            match self.script {
                Script::Accept => {}
                Script::FlakyOnce if m.delivery.attempts == 0 => {
                    return Err(DeliveryError::transient("503 try later"));
                }
                Script::FlakyOnce => {}
                Script::DownAfter(k) if n >= k => {
                    return Err(DeliveryError::ChannelDown {
                        reason: "401 bad credentials".into(),
                    });
                }
                Script::DownAfter(_) => {}
            }
            Ok(Accepted {
                provider_id: None,
                delivered: false,
            })
        })
    }
}

fn alert() -> Arc<AlertContext> {
    let text = ChannelText {
        subject: None,
        text: "Allerta".into(),
        html: None,
    };
    Arc::new(AlertContext {
        id: "A".into(),
        status: CapStatus::Actual,
        msg_type: MsgType::Alert,
        rendered: Rendered {
            meta: CapMeta {
                event: "e".into(),
                category: "Met".into(),
                severity: "Severe".into(),
                urgency: "Expected".into(),
                certainty: "Likely".into(),
                response_type: None,
                instruction: None,
            },
            default_language: "it".into(),
            info: BTreeMap::new(),
            channels: BTreeMap::from([(ChannelId::Sms, BTreeMap::from([("it".into(), text)]))]),
        },
        created_at: "2026-12-01T00:00:00+00:00".into(),
        expires_at: None,
        thread_posts: Default::default(),
    })
}

fn lane(
    queue: &FakeQueue,
    channel: Arc<FakeChannel>,
    shutdown: CancellationToken,
) -> Lane<FakeQueue> {
    Lane {
        writer: queue.clone(),
        retry: Retry {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(10),
        },
        progress: Arc::new(NoProgress),
        shutdown,
        alert: alert(),
        channel,
    }
}

#[tokio::test(start_paused = true)]
async fn every_delivery_is_sent_once_and_the_lane_settles() {
    let q = FakeQueue::with(50);
    let ch = Arc::new(FakeChannel::new(Script::Accept));
    let end = lane(&q, ch.clone(), CancellationToken::new())
        .run_inner()
        .await;
    assert_eq!(end.unwrap(), LaneEnd::Settled);
    assert_eq!(q.count(State::Done), 50);
    assert!(ch.per_delivery.lock().unwrap().values().all(|&n| n == 1));
}

#[tokio::test(start_paused = true)]
async fn one_turn_starts_at_most_what_the_concurrency_allows() {
    let q = FakeQueue::with(50);
    let ch = Arc::new(FakeChannel::new(Script::Accept));
    let l = lane(&q, ch.clone(), CancellationToken::new());
    let mut st = l.start().await.unwrap();
    assert_eq!(l.turn(&mut st).await.unwrap(), Turn::Started(4));
    assert_eq!(q.count(State::Sending), 4, "no more claimed than can start");
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_retried_after_its_backoff() {
    let q = FakeQueue::with(3);
    let ch = Arc::new(FakeChannel::new(Script::FlakyOnce));
    let start = Instant::now();
    let end = lane(&q, ch.clone(), CancellationToken::new())
        .run_inner()
        .await;
    assert_eq!(end.unwrap(), LaneEnd::Settled);
    assert_eq!(q.count(State::Done), 3);
    assert_eq!(ch.sends.load(Ordering::SeqCst), 6, "each sent twice");
    // Jittered backoff around 2 s: never immediately.
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_channel_down_stops_the_lane_and_keeps_the_rest_pending() {
    let q = FakeQueue::with(40);
    let mut fake = FakeChannel::new(Script::DownAfter(5));
    fake.concurrency = 1;
    let ch = Arc::new(fake);
    let end = lane(&q, ch.clone(), CancellationToken::new())
        .run_inner()
        .await;
    assert_eq!(end.unwrap(), LaneEnd::Stopped("401 bad credentials".into()));
    assert_eq!(q.count(State::Done), 5);
    assert_eq!(
        q.count(State::Failed),
        0,
        "nobody is failed for the channel's fault"
    );
    assert_eq!(q.count(State::Pending), 35, "kept for resume");
}

#[tokio::test(start_paused = true)]
async fn a_halt_ends_the_lane_after_the_sends_in_flight_finish() {
    let q = FakeQueue::with(20);
    let ch = Arc::new(FakeChannel::new(Script::Accept));
    let l = lane(&q, ch.clone(), CancellationToken::new());
    let mut st = l.start().await.unwrap();
    assert_eq!(l.turn(&mut st).await.unwrap(), Turn::Started(4));
    q.halt(Halt::State(AlertState::Cancelled));
    let end = l.turn(&mut st).await.unwrap();
    assert!(
        matches!(end, Turn::End(LaneEnd::Halted(ref r)) if r.contains("cancelled")),
        "{end:?}"
    );
    assert_eq!(q.count(State::Sending), 0, "in-flight sends were recorded");
    assert_eq!(q.count(State::Done), 4);
    assert_eq!(q.count(State::Pending), 16);
}

#[tokio::test(start_paused = true)]
async fn the_rate_is_held_evenly() {
    let q = FakeQueue::with(21);
    let mut fake = FakeChannel::new(Script::Accept);
    fake.rate = Some(10.0);
    let ch = Arc::new(fake);
    let end = lane(&q, ch.clone(), CancellationToken::new())
        .run_inner()
        .await;
    assert_eq!(end.unwrap(), LaneEnd::Settled);
    let times = ch.times.lock().unwrap();
    let span = *times.last().unwrap() - times[0];
    assert_eq!(span, Duration::from_secs(2), "21 messages at 10/s");
    for w in times.windows(2) {
        assert_eq!(w[1] - w[0], Duration::from_millis(100));
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_interrupts_and_leaves_the_unstarted_pending() {
    let q = FakeQueue::with(100);
    let mut fake = FakeChannel::new(Script::Accept);
    fake.rate = Some(10.0);
    let ch = Arc::new(fake);
    let token = CancellationToken::new();
    let l = lane(&q, ch.clone(), token.clone());
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1050)).await;
        token.cancel();
    });
    let end = l.run_inner().await.unwrap();
    stopper.await.unwrap();
    assert_eq!(end, LaneEnd::Interrupted);
    let sent = ch.sends.load(Ordering::SeqCst);
    assert!((10..=13).contains(&sent), "about a second's worth: {sent}");
    assert_eq!(q.count(State::Sending), 0);
    assert_eq!(q.count(State::Done) + q.count(State::Pending), 100);
}

#[tokio::test(start_paused = true)]
async fn a_lane_waits_for_a_pending_plan_and_sends_what_it_adds() {
    let q = FakeQueue::with(5);
    q.set_planning(true);
    let ch = Arc::new(FakeChannel::new(Script::Accept));
    let l = lane(&q, ch.clone(), CancellationToken::new());
    let planner = {
        let q = q.clone();
        tokio::spawn(async move {
            // Long after the first five are sent: the lane must still wait.
            tokio::time::sleep(Duration::from_secs(3)).await;
            q.add(6..=9);
            tokio::time::sleep(Duration::from_secs(3)).await;
            q.add(10..=12);
            q.set_planning(false);
        })
    };
    let end = l.run_inner().await.unwrap();
    planner.await.unwrap();
    assert_eq!(end, LaneEnd::Settled);
    assert_eq!(q.count(State::Done), 12, "every chunk was sent");
    assert!(ch.per_delivery.lock().unwrap().values().all(|&n| n == 1));
}
