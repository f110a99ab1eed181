//! The top-level error: every failure knows which exit code it deserves
//! (SPEC §6).

use std::process::ExitCode;

use crate::config::ConfigError;
use crate::ledger::LedgerError;
use crate::template::TemplateError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or input; nothing was sent (exit 2).
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Confirmation declined or impossible (exit 4).
    #[error("{0}")]
    Refused(String),
    /// The alert went out but some deliveries failed (exit 3).
    #[error("{0}")]
    DeliveriesFailed(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Anything else at run time (exit 1).
    #[error("{0}")]
    Runtime(String),
    /// The operator stopped a send with Ctrl-C: the alert is paused
    /// (exit 130, as for any program ended by SIGINT).
    #[error("{0}")]
    Interrupted(String),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Input(_) | Self::Config(_) | Self::Template(_) => 2,
            Self::Ledger(
                LedgerError::UnknownAlert(_) | LedgerError::UnknownDraft(_) | LedgerError::NoAlerts,
            ) => 2,
            Self::DeliveriesFailed(_) => 3,
            Self::Refused(_) => 4,
            Self::Ledger(_) | Self::Runtime(_) => 1,
            Self::Interrupted(_) => 130,
        })
    }
}

impl From<crate::channel::BuildError> for Error {
    fn from(e: crate::channel::BuildError) -> Self {
        Self::Input(e.0)
    }
}
