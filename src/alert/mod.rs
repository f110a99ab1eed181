//! The alert layer (SPEC §11): the one place that decides what may go out.
//!
//! Every entry point — `send`, `update`, `cancel`, `retry`, `resume`,
//! `approve`/`reject`, and later drafts and the console — calls these
//! functions, so no path can skip a rule. The CLI only parses arguments
//! and answers the questions asked here through [`Operator`] (confirm? on
//! which terminal?).
//!
//! - [`request`]: raw inputs → a validated [`Prepared`] alert.
//! - [`reach`]: who an alert reaches, and whether beyond the drill audience.
//! - [`confirm`]: the confirmation rule and its screen.
//! - [`plan`]: the fan-out plan written in one durable transaction.
//! - [`run`]: the lease, the engine run, Ctrl-C → `paused`.
//! - [`send`], [`followup`], [`resume`], [`approval`]: the use cases.
//! - [`draft`]: `send --draft ID`: a draft from a bulletin through the same rules.
//! - [`identity`]: the OS user behind a command (never `--operator`).
//! - [`escalation`]: the escalation ladder: steps held until due (SPEC §14).

pub mod approval;
pub mod confirm;
pub mod draft;
pub mod escalation;
pub mod followup;
pub mod identity;
pub mod plan;
pub mod reach;
pub mod registry;
pub mod request;
pub mod resume;
pub mod run;
pub mod send;

use std::sync::Arc;

pub use confirm::{Answer, Consent, Operator, Screen};
pub use request::{Prepared, SendRequest};
pub use run::Stop;

use crate::config::Config;
use crate::dispatch::Progress;

/// Messages for the person at the terminal (the CLI prints them on stderr,
/// or not at all with `--json`).
pub trait Notify: Sync {
    fn note(&self, text: &str);
    /// Errors and warnings: shown even with `--json` (stderr is not the
    /// JSON document).
    fn warn(&self, text: &str);
}

/// What every use case needs: the configuration, who acts, how to ask for
/// consent, where to report progress, and how to be stopped.
pub struct Session<'a> {
    pub config: &'a Config,
    /// Recorded in the audit trail (`--operator` or the OS user).
    pub actor: &'a crate::Actor,
    /// The OS user: the identity of the two-person rule.
    pub identity: String,
    pub consent: Consent<'a>,
    pub notify: &'a dyn Notify,
    pub progress: Arc<dyn Progress>,
    pub stop: Stop,
}
