//! Running an alert: the lease that makes this process its only sender,
//! the engine run, and what a stop means. Ctrl-C is the operator's decision
//! (`paused`: the timer leaves it alone); SIGTERM is a shutdown and a crash
//! is a crash (the alert stays `sending` and the timer finishes it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Session;
use crate::channel::{self, AlertContext, Channel};
use crate::config::Config;
use crate::dispatch::{Engine, Writer};
use crate::domain::ChannelId;
use crate::error::Error;
use crate::ledger::{self, AlertRow, AlertState, Ledger};

/// How long a lease lasts without renewal (the writer renews it every 10 s).
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// How a run may be stopped from outside.
#[derive(Clone, Default)]
pub struct Stop {
    token: CancellationToken,
    by_operator: Arc<AtomicBool>,
}

impl Stop {
    /// Ctrl-C: the operator wants the alert held (`paused`).
    pub fn operator(&self) {
        self.by_operator.store(true, Ordering::SeqCst);
        self.token.cancel();
    }

    /// SIGTERM: the machine is shutting down; the timer finishes the alert.
    pub fn shutdown(&self) {
        self.token.cancel();
    }

    fn is_operator(&self) -> bool {
        self.by_operator.load(Ordering::SeqCst)
    }
}

/// This process's hold on an alert: taken before any of its deliveries
/// changes state, released when the run ends.
pub struct Lease {
    pub alert_id: String,
    pub owner: String,
}

impl Lease {
    /// Takes the lease atomically, or says who holds it (exit 1).
    pub fn take(ledger: &Ledger, alert_id: &str) -> Result<Self, Error> {
        Self::try_take(ledger, alert_id)?.map_err(|holder| Error::Runtime(busy(alert_id, &holder)))
    }

    /// Takes the lease atomically, or gives the live holder's `host:pid`.
    pub fn try_take(ledger: &Ledger, alert_id: &str) -> Result<Result<Self, String>, Error> {
        let owner = ledger::lease_owner();
        Ok(match ledger.acquire_lease(alert_id, &owner, LEASE_TTL)? {
            None => Ok(Self {
                alert_id: alert_id.to_owned(),
                owner,
            }),
            Some(holder) => Err(holder),
        })
    }

    pub fn release(self, ledger: &Ledger) -> Result<(), Error> {
        ledger.release_lease(&self.alert_id, &self.owner)?;
        Ok(())
    }
}

/// "being sent by pid P on host H".
pub fn busy(alert_id: &str, holder: &str) -> String {
    let (host, pid) = holder.rsplit_once(':').unwrap_or((holder, "?"));
    format!(
        "alert {alert_id} is being sent right now by process {pid} on host {host}; not touching it (try again when that process ends)"
    )
}

/// `resume`/`retry` refuse when a channel's transport changed since the
/// alert was planned: a training alert on the outbox must never go out for
/// real (SPEC §13).
pub fn check_transports(config: &Config, row: &AlertRow) -> Result<(), Error> {
    if row.transports.is_empty() {
        return Ok(()); // planned before transports were recorded
    }
    let mut changed = Vec::new();
    for (channel, planned) in &row.transports {
        let now = channel
            .parse::<ChannelId>()
            .ok()
            .and_then(|c| config.channels.transport_kind(c))
            .unwrap_or("not configured");
        if now != planned {
            changed.push(format!("{channel}: planned on `{planned}`, now `{now}`"));
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    Err(Error::Input(format!(
        "alert {} was planned on other transports ({}); nothing was sent. Restore the configuration it was planned with, or send a new alert",
        row.id,
        changed.join("; ")
    )))
}

pub fn alert_context(row: &AlertRow) -> Result<AlertContext, Error> {
    let corrupt = |what: &str| {
        Error::Ledger(ledger::LedgerError::Corrupt(format!(
            "alert {}: {what}",
            row.id
        )))
    };
    Ok(AlertContext {
        id: row.id.clone(),
        status: row.status,
        msg_type: row.msg_type,
        rendered: serde_json::from_str(&row.rendered).map_err(|_| corrupt("rendered texts"))?,
        created_at: row.created_at.clone(),
        expires_at: row.expires_at.clone(),
        thread_posts: Default::default(),
    })
}

pub fn build_channels(config: &Config, ids: &[ChannelId]) -> Result<Vec<Arc<dyn Channel>>, Error> {
    ids.iter()
        .map(|id| channel::build(config, *id).map_err(Error::from))
        .collect()
}

/// Sends what is unsettled of the leased alert; gives the ledger back.
/// Deliveries left `sending` by a crash are re-sent (their outcome is
/// unknown: a duplicate beats a loss) — only now that the lease is ours.
pub async fn deliver(s: &Session<'_>, ledger: Ledger, lease: Lease) -> Result<Ledger, Error> {
    let alert_id = lease.alert_id.clone();
    let (context, transports) = match before_run(s, &ledger, &alert_id) {
        Ok(v) => v,
        Err(e) => {
            lease.release(&ledger)?;
            return Err(e);
        }
    };
    for t in &transports {
        if t.is_outbox() {
            s.notify.note(&format!(
                "note: {} is on the outbox transport ({}): nobody is reached",
                t.id(),
                t.describe()
            ));
        }
    }
    let rates = transports
        .iter()
        .filter_map(|t| t.rate_per_second().map(|r| (t.id(), r)))
        .collect();
    let (writer, handle) = Writer::spawn(ledger, alert_id.clone(), lease.owner.clone(), rates);
    let engine = Engine {
        writer,
        retry: s.config.retry.clone(),
        progress: s.progress.clone(),
        shutdown: s.stop.token.clone(),
    };
    let result = {
        let run = engine.run(Arc::new(context), transports);
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => break r,
                signal = next_signal() => match signal {
                    Signal::Interrupt => {
                        s.notify.warn("Ctrl-C: pausing the alert; messages in flight finish first…");
                        s.stop.operator();
                    }
                    Signal::Terminate => {
                        s.notify.warn("SIGTERM: stopping; messages in flight finish first, the rest stays for `allerta resume`…");
                        s.stop.shutdown();
                    }
                },
            }
        }
    };
    drop(engine);
    let joined = handle
        .join()
        .map_err(|_| Error::Runtime("the ledger writer thread panicked".into()))
        .and_then(|r| r.map_err(Error::from));
    let ledger = match joined {
        Ok(l) => l,
        Err(e) => {
            // The writer's connection is gone: free the lease through a new
            // one so `resume` can finish the alert at once.
            if let Ok(l) = Ledger::open(&s.config.general.database) {
                let _ = lease.release(&l);
            }
            return Err(Error::Runtime(format!("{e}\n{}", resume_hint(&alert_id))));
        }
    };
    ledger.settle_if_done(&alert_id)?;
    let paused = s.stop.is_operator()
        && ledger.transition(&alert_id, AlertState::Sending, AlertState::Paused)?;
    lease.release(&ledger)?;
    let report = result.map_err(|e| Error::Runtime(format!("{e}\n{}", resume_hint(&alert_id))))?;
    for (channel, reason) in &report.stopped {
        s.notify.warn(&format!(
            "error: channel {channel} stopped: {reason}\n  its remaining deliveries are kept as pending: fix the cause, then run `allerta resume {alert_id}`"
        ));
    }
    if paused {
        return Err(Error::Interrupted(format!(
            "alert {alert_id} PAUSED by the operator: messages in flight finished, the rest are held.\n  to stop it for good:  allerta cancel {alert_id}\n  to send the rest:     allerta resume {alert_id}"
        )));
    }
    if let Some(reason) = &report.halted {
        return Err(Error::Runtime(format!(
            "alert {alert_id}: stopped sending: {reason}"
        )));
    }
    if report.interrupted {
        return Err(Error::Runtime(format!(
            "interrupted: unfinished deliveries are kept; run `allerta resume {alert_id}` to finish them"
        )));
    }
    Ok(ledger)
}

/// What to do after the ledger failed under a send: nothing is lost that
/// was recorded, and `resume` re-sends what was not (SPEC §7, §18).
fn resume_hint(alert_id: &str) -> String {
    format!(
        "  unfinished deliveries are kept; when the database is reachable again run `allerta resume {alert_id}`"
    )
}

enum Signal {
    Interrupt,
    Terminate,
}

/// The next SIGINT or SIGTERM (pending forever when they cannot be
/// watched). Handlers are installed only while an alert is being sent, so
/// Ctrl-C at a confirmation prompt still ends the program at once.
async fn next_signal() -> Signal {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => Signal::Interrupt,
        _ = term.recv() => Signal::Terminate,
    }
}

/// The alert's context and the channels with something left to send. While
/// part of its plan is pending (the engine's writer plans it during the
/// run), every channel it was planned on gets a lane: a later chunk may
/// bring its first rows.
fn before_run(
    s: &Session<'_>,
    ledger: &Ledger,
    alert_id: &str,
) -> Result<(AlertContext, Vec<Arc<dyn Channel>>), Error> {
    let row = ledger.alert(Some(alert_id))?;
    let mut context = alert_context(&row)?;
    // Social follow-ups reply in the thread of the alert's first post.
    context.thread_posts = ledger
        .social_threads(alert_id)?
        .into_iter()
        .map(|(channel, t)| {
            let posts = channel::social::ThreadPosts {
                root: t.root,
                parent: t.parent,
            };
            (channel, posts)
        })
        .collect();
    let reset = ledger.reset_sending(alert_id)?;
    // Held deliveries now due (escalation steps, a voice call's next try):
    // released, or skipped for whoever acknowledged meanwhile.
    let released = ledger.release_due(alert_id, ledger::now_ms())?;
    if released.released + released.skipped > 0 {
        s.notify.note(&format!(
            "escalation: {} deliveries released, {} skipped (acknowledged)",
            released.released, released.skipped
        ));
    }
    if reset > 0 {
        s.notify.note(&format!(
            "{reset} deliveries with unknown outcome (interrupted earlier) will be re-sent"
        ));
    }
    let ids: Vec<ChannelId> = if ledger.planning_pending(alert_id)? {
        row.channels
            .iter()
            .filter_map(|ch| ch.parse().ok())
            .collect()
    } else {
        ledger
            .counts(alert_id)?
            .iter()
            .filter(|(_, c)| c.unsettled() > 0)
            .filter_map(|(ch, _)| ch.parse().ok())
            .collect()
    };
    Ok((context, build_channels(s.config, &ids)?))
}
