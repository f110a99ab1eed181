//! The confirmation rule (SPEC §11): anything that would reach at least one
//! recipient outside `[drill] audience` needs a typed confirmation on a
//! terminal or `--yes`, whatever its CAP status; the screen says in
//! capitals which status it is.

use crate::domain::CapStatus;
use crate::error::Error;

/// What the operator is asked to confirm.
#[derive(Debug, Clone)]
pub struct Screen {
    pub status: CapStatus,
    /// First line, in capitals: what kind of message this is.
    pub heading: String,
    pub lines: Vec<String>,
    /// The question, e.g. "Send this alert now?".
    pub question: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Confirmed,
    Declined,
    /// Nobody to ask: no terminal.
    NoTerminal,
}

/// Answers the library's questions (the CLI asks on the terminal).
pub trait Operator: Sync {
    fn confirm(&self, screen: &Screen) -> Answer;
}

/// How consent is obtained for one command.
#[derive(Clone, Copy)]
pub enum Consent<'a> {
    /// `--yes`: given in advance.
    Given,
    Ask(&'a dyn Operator),
}

impl Consent<'_> {
    pub fn is_given(&self) -> bool {
        matches!(self, Self::Given)
    }

    /// Asks when needed; `Refused` (exit 4) when declined or impossible.
    pub fn obtain(&self, screen: &Screen) -> Result<(), Error> {
        match self {
            Self::Given => Ok(()),
            Self::Ask(operator) => match operator.confirm(screen) {
                Answer::Confirmed => Ok(()),
                Answer::Declined => Err(Error::Refused("not confirmed: nothing was sent".into())),
                Answer::NoTerminal => Err(Error::Refused(format!(
                    "refusing without a terminal to confirm on: this {} reaches people outside the drill audience; add --yes if you mean it (nothing was sent)",
                    kind(screen.status)
                ))),
            },
        }
    }
}

fn kind(status: CapStatus) -> &'static str {
    match status {
        CapStatus::Actual => "real (Actual) alert",
        CapStatus::Exercise => "drill (Exercise)",
        CapStatus::Test => "test (Test)",
    }
}

/// The capitalised first line of every confirmation screen.
pub fn heading(status: CapStatus, what: &str) -> String {
    match status {
        CapStatus::Actual => {
            format!("REAL ALERT (ACTUAL) — {what}: citizens receive it as a real emergency")
        }
        CapStatus::Exercise => {
            format!("DRILL (EXERCISE) — {what}: it reaches people OUTSIDE the drill audience")
        }
        CapStatus::Test => format!("TEST — {what}: it reaches people OUTSIDE the drill audience"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Says(Answer);
    impl Operator for Says {
        fn confirm(&self, _: &Screen) -> Answer {
            self.0
        }
    }

    fn screen(status: CapStatus) -> Screen {
        Screen {
            status,
            heading: heading(status, "send"),
            lines: vec![],
            question: "Send?".into(),
        }
    }

    #[test]
    fn every_status_is_named_in_capitals() {
        assert!(heading(CapStatus::Actual, "send").starts_with("REAL ALERT (ACTUAL)"));
        assert!(heading(CapStatus::Exercise, "send").starts_with("DRILL (EXERCISE)"));
        assert!(heading(CapStatus::Test, "send").starts_with("TEST"));
    }

    #[test]
    fn without_a_terminal_consent_is_refused_with_exit_4() {
        let op = Says(Answer::NoTerminal);
        let err = Consent::Ask(&op)
            .obtain(&screen(CapStatus::Test))
            .expect_err("refused");
        assert!(matches!(err, Error::Refused(_)));
        assert!(err.to_string().contains("--yes"), "{err}");
    }

    #[test]
    fn declined_is_refused_and_given_needs_nobody() {
        let op = Says(Answer::Declined);
        assert!(
            Consent::Ask(&op)
                .obtain(&screen(CapStatus::Actual))
                .is_err()
        );
        assert!(Consent::Given.obtain(&screen(CapStatus::Actual)).is_ok());
        let yes = Says(Answer::Confirmed);
        assert!(
            Consent::Ask(&yes)
                .obtain(&screen(CapStatus::Exercise))
                .is_ok()
        );
    }
}
