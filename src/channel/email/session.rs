//! One SMTP connection: open it (TCP with TCP_NODELAY, implicit TLS or
//! STARTTLS, EHLO, AUTH), carry messages over it, and turn every SMTP reply
//! or network failure into a `DeliveryError` right here, where the server
//! is called (SPEC §7, §8.3).
//!
//! We open the socket ourselves instead of using lettre's pooled transport:
//! lettre never sets TCP_NODELAY and writes the body and the final
//! `<CRLF>.<CRLF>` separately, so Nagle plus delayed ACK stall every
//! message ~40 ms (TESTBED.md).

use std::future::Future;
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::net::TcpStream;

use super::endpoint::{Endpoint, Security};
use super::tls::{TlsSetup, is_tls_failure};
use crate::channel::DeliveryError;

/// What every connection of the channel shares.
pub struct Settings {
    pub endpoint: Endpoint,
    pub tls: TlsSetup,
    pub credentials: Option<(String, Credentials)>,
    pub hello: ClientId,
    pub timeout: Duration,
    pub from: Address,
}

/// The step of the SMTP dialogue that failed, for error mapping and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Greeting,
    Starttls,
    Auth,
    Mail,
    Rcpt,
    Data,
    Message,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Greeting => "greeting/EHLO",
            Self::Starttls => "STARTTLS",
            Self::Auth => "AUTH",
            Self::Mail => "MAIL FROM",
            Self::Rcpt => "RCPT TO",
            Self::Data => "DATA",
            Self::Message => "end of DATA",
        }
    }
}

/// A failed send on an open connection.
pub struct Failure {
    pub error: DeliveryError,
    /// The connection is still in step with the server (a reply refused
    /// this message): after RSET it can carry the next one.
    pub reusable: bool,
    /// The connection died before the server saw any of this message (a
    /// reused connection the server had closed): resend at once on a fresh
    /// one, nothing can be duplicated.
    pub lost_before_mail: bool,
    /// For a recipient refused with a 5xx: the reply code and enhanced
    /// status ("550 5.1.1"), so the channel can spot a server that refuses
    /// everyone the same way.
    pub rejection: Option<String>,
}

enum Raw {
    Smtp(SmtpError),
    Timeout,
}

async fn timed<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, SmtpError>>,
) -> Result<T, Raw> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Raw::Smtp(e)),
        Err(_) => Err(Raw::Timeout),
    }
}

pub struct Session {
    conn: AsyncSmtpConnection,
    last_used: Instant,
}

/// Connections idle longer than this are not reused: servers drop idle
/// clients (Postfix after 300 s, some after 30 s) and a fresh connection
/// costs a few milliseconds.
const MAX_IDLE: Duration = Duration::from_secs(15);

impl Session {
    /// Connects, secures and authenticates a new connection.
    pub async fn open(s: &Settings) -> Result<Self, DeliveryError> {
        let ep = &s.endpoint;
        let tcp =
            match tokio::time::timeout(s.timeout, TcpStream::connect((ep.host.as_str(), ep.port)))
                .await
            {
                Ok(Ok(tcp)) => tcp,
                Ok(Err(e)) => {
                    return Err(DeliveryError::transient(format!(
                        "cannot connect to {}: {e}",
                        ep.display
                    )));
                }
                Err(_) => {
                    return Err(DeliveryError::transient(format!(
                        "cannot connect to {}: no answer within {:?}",
                        ep.display, s.timeout
                    )));
                }
            };
        // The whole point of opening the socket ourselves (module comment).
        tcp.set_nodelay(true).map_err(|e| {
            DeliveryError::transient(format!("{}: cannot set TCP_NODELAY: {e}", ep.display))
        })?;

        let mut conn = if ep.security == Security::Implicit {
            let tls = match tokio::time::timeout(s.timeout, s.tls.wrap(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) if is_tls_failure(&e) => {
                    return Err(tls_down(ep, &e.to_string()));
                }
                Ok(Err(e)) => {
                    return Err(DeliveryError::transient(format!(
                        "{}: TLS handshake: {e}",
                        ep.display
                    )));
                }
                Err(_) => {
                    return Err(DeliveryError::transient(format!(
                        "{}: TLS handshake: no answer within {:?}",
                        ep.display, s.timeout
                    )));
                }
            };
            timed(
                s.timeout,
                AsyncSmtpConnection::connect_with_transport(Box::new(tls), &s.hello),
            )
            .await
            .map_err(|e| classify(s, Stage::Greeting, e).error)?
        } else {
            timed(
                s.timeout,
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &s.hello),
            )
            .await
            .map_err(|e| classify(s, Stage::Greeting, e).error)?
        };

        let mut encrypted = ep.security == Security::Implicit;
        if matches!(
            ep.security,
            Security::Opportunistic | Security::StarttlsRequired
        ) {
            if conn.can_starttls() {
                timed(s.timeout, conn.starttls(s.tls.starttls.clone(), &s.hello))
                    .await
                    .map_err(|e| classify(s, Stage::Starttls, e).error)?;
                encrypted = true;
            } else if ep.security == Security::StarttlsRequired {
                return Err(DeliveryError::ChannelDown {
                    reason: format!(
                        "{} does not offer STARTTLS and the URL says tls=required: nothing is sent in clear",
                        ep.display
                    ),
                });
            }
        }

        if let Some((user, credentials)) = &s.credentials {
            if !encrypted && !ep.is_loopback() {
                return Err(DeliveryError::ChannelDown {
                    reason: format!(
                        "{} offers no TLS: refusing to send the password of `{user}` in clear (use smtps:// or a server with STARTTLS)",
                        ep.display
                    ),
                });
            }
            timed(
                s.timeout,
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
            )
            .await
            .map_err(|e| classify(s, Stage::Auth, e).error)?;
        }
        Ok(Self {
            conn,
            last_used: Instant::now(),
        })
    }

    /// True when the connection was idle too long to trust.
    pub fn is_stale(&self) -> bool {
        self.last_used.elapsed() > MAX_IDLE
    }

    /// One message to one recipient: MAIL, RCPT, DATA. Returns the server's
    /// final reply text.
    pub async fn deliver(
        &mut self,
        s: &Settings,
        to: &Address,
        message: &[u8],
    ) -> Result<String, Failure> {
        self.last_used = Instant::now();
        let info = self.conn.server_info();
        let mut params = Vec::new();
        if !message.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(Failure {
                    error: DeliveryError::permanent(
                        "the message is 8-bit and the server does not offer 8BITMIME",
                    ),
                    reusable: true,
                    lost_before_mail: false,
                    rejection: None,
                });
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let ascii = |a: &Address| AsRef::<str>::as_ref(a).is_ascii();
        if !ascii(to) || !ascii(&s.from) {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(Failure {
                    error: DeliveryError::permanent(format!(
                        "<{to}> is an internationalised address and the server does not offer SMTPUTF8"
                    )),
                    reusable: true,
                    lost_before_mail: false,
                    rejection: None,
                });
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        let t = s.timeout;
        timed(
            t,
            self.conn.command(Mail::new(Some(s.from.clone()), params)),
        )
        .await
        .map_err(|e| classify(s, Stage::Mail, e))?;
        timed(t, self.conn.command(Rcpt::new(to.clone(), Vec::new())))
            .await
            .map_err(|e| classify(s, Stage::Rcpt, e))?;
        timed(t, self.conn.command(Data))
            .await
            .map_err(|e| classify(s, Stage::Data, e))?;
        let reply = timed(t, self.conn.message(message))
            .await
            .map_err(|e| classify(s, Stage::Message, e))?;
        self.last_used = Instant::now();
        Ok(reply.message().collect::<Vec<_>>().join(" "))
    }

    /// MAIL FROM with our sender, then RSET: the server takes mail from us
    /// on this connection. For readiness checks: nothing is sent.
    pub async fn try_sender(&mut self, s: &Settings) -> Result<(), DeliveryError> {
        timed(
            s.timeout,
            self.conn
                .command(Mail::new(Some(s.from.clone()), Vec::new())),
        )
        .await
        .map_err(|e| classify(s, Stage::Mail, e).error)?;
        self.reset(s).await;
        Ok(())
    }

    /// RSET after a refused message; false when the connection is unusable.
    pub async fn reset(&mut self, s: &Settings) -> bool {
        let ok = timed(
            s.timeout.min(Duration::from_secs(5)),
            self.conn.command(Rset),
        )
        .await
        .is_ok();
        self.last_used = Instant::now();
        ok
    }

    /// Polite goodbye (best effort, bounded).
    pub async fn quit(mut self) {
        let _ = timed(Duration::from_secs(2), self.conn.command(Quit)).await;
    }
}

fn tls_down(ep: &Endpoint, detail: &str) -> DeliveryError {
    DeliveryError::ChannelDown {
        reason: format!(
            "TLS with {} failed: {detail} (certificate not trusted? a private CA goes in channels.email.ca_file)",
            ep.display
        ),
    }
}

/// The reply code of an SMTP error, if the server answered at all.
fn reply_code(e: &SmtpError) -> Option<u16> {
    e.status().and_then(|c| c.to_string().parse().ok())
}

/// "535 5.7.8 Authentication credentials invalid", or the error itself.
fn reply_text(e: &SmtpError) -> String {
    match (reply_code(e), std::error::Error::source(e)) {
        (Some(code), Some(text)) => format!("{code} {text}"),
        _ => e.to_string(),
    }
}

/// The error mapping of the channel (SPEC §7): 4xx transient; 5xx on a
/// recipient or its message permanent; anything that would fail the same
/// way for every recipient — authentication, TLS trust, the sender refused,
/// the server not relaying for us — stops the channel instead of burning
/// the audience; lost connections and timeouts transient.
fn classify(s: &Settings, stage: Stage, raw: Raw) -> Failure {
    let ep = &s.endpoint;
    let in_transaction = matches!(
        stage,
        Stage::Mail | Stage::Rcpt | Stage::Data | Stage::Message
    );
    let e = match raw {
        Raw::Timeout => {
            return Failure {
                error: DeliveryError::transient(format!(
                    "{}: no answer to {} within {:?}",
                    ep.display,
                    stage.as_str(),
                    s.timeout
                )),
                reusable: false,
                lost_before_mail: stage == Stage::Mail,
                rejection: None,
            };
        }
        Raw::Smtp(e) => e,
    };
    let down = |reason: String| Failure {
        error: DeliveryError::ChannelDown { reason },
        reusable: false,
        lost_before_mail: false,
        rejection: None,
    };
    let text = reply_text(&e);
    match reply_code(&e) {
        Some(code) if code >= 500 => match stage {
            Stage::Auth => {
                let user = s.credentials.as_ref().map_or("", |(u, _)| u.as_str());
                down(format!(
                    "{} refused the login of `{user}`: {text} (check channels.email.username and password)",
                    ep.display
                ))
            }
            _ if matches!(code, 530 | 534 | 535 | 538) => down(format!(
                "{} requires authentication or TLS before {}: {text} (set channels.email.username/password; do not use tls=none)",
                ep.display,
                stage.as_str()
            )),
            Stage::Mail => down(format!(
                "{} refuses the sender <{}>: {text} (check channels.email.from)",
                ep.display, s.from
            )),
            Stage::Rcpt if text.to_ascii_lowercase().contains("relay") => down(format!(
                "{} does not relay for us: {text} (authentication missing?)",
                ep.display
            )),
            Stage::Rcpt | Stage::Data | Stage::Message => Failure {
                error: DeliveryError::permanent(format!("{} {text}", stage.as_str())),
                reusable: true,
                lost_before_mail: false,
                rejection: Some(
                    text.split_whitespace()
                        .take(2)
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            },
            Stage::Greeting | Stage::Starttls => down(format!(
                "{} refuses the session at {}: {text}",
                ep.display,
                stage.as_str()
            )),
        },
        Some(code) => Failure {
            error: DeliveryError::transient(format!("{} {text}", stage.as_str())),
            // 421: the server is closing the connection.
            reusable: in_transaction && code != 421,
            lost_before_mail: false,
            rejection: None,
        },
        None if e.is_tls() || is_tls_failure(&e) => down(tls_down(ep, &e.to_string()).to_string()),
        None if e.is_client() && in_transaction => Failure {
            error: DeliveryError::permanent(format!("{}: {e}", stage.as_str())),
            reusable: true,
            lost_before_mail: false,
            rejection: None,
        },
        None if e.is_client() => down(format!("{}: {}: {e}", ep.display, stage.as_str())),
        None => Failure {
            error: DeliveryError::transient(format!(
                "{}: connection lost at {}: {e}",
                ep.display,
                stage.as_str()
            )),
            reusable: false,
            lost_before_mail: stage == Stage::Mail,
            rejection: None,
        },
    }
}
