//! Email through SMTP (SPEC §8.3): the alert's headers, the MIME message
//! (text, plus an HTML alternative when the template has one), and the
//! channel that sends it over a small pool of connections of our own
//! (`session`), each reused for message after message.
//!
//! Error classes (mapped in `session`): SMTP 4xx, lost connections and
//! timeouts are transient; a 5xx on a recipient or its message is
//! permanent; failed authentication, untrusted TLS, a refused sender or
//! relaying stop the channel: its deliveries stay `pending` for `resume`.

mod endpoint;
mod session;
mod tls;

use std::sync::Mutex;

use lettre::Address;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::Semaphore;

use super::{Accepted, BuildError, Channel, DeliveryError, Message, SendFuture};
use crate::config::Email;
use crate::domain::ChannelId;
use endpoint::Endpoint;
use session::{Session, Settings};

/// What the alert headers need from `[channels.email]`.
#[derive(Debug, Clone)]
pub struct HeaderConfig {
    /// The domain of `from`, the right-hand side of every Message-ID.
    pub domain: String,
    /// `unsubscribe_url` with `{token}` still in it.
    pub unsubscribe_url: Option<String>,
}

impl HeaderConfig {
    pub fn new(config: &Email) -> Self {
        let domain = config
            .from
            .parse::<Mailbox>()
            .map(|m| m.email.domain().to_owned())
            .unwrap_or_else(|_| "allerta.invalid".to_owned());
        Self {
            domain,
            unsubscribe_url: config.unsubscribe_url.clone(),
        }
    }
}

/// The headers every alert email carries (also written to the outbox).
///
/// The Message-ID is built from the alert and the delivery, so a message
/// re-sent after a crash carries the same id as the first copy and mail
/// clients can fold the duplicate.
pub fn headers_for(m: &Message<'_>, h: &HeaderConfig) -> Vec<(String, String)> {
    let mut headers = vec![
        (
            "Message-ID".to_owned(),
            format!("<{}.{}@{}>", m.alert.id, m.delivery.id, h.domain),
        ),
        ("Date".to_owned(), chrono::Utc::now().to_rfc2822()),
        ("X-Allerta-Alert".to_owned(), m.alert.id.clone()),
        (
            "X-Allerta-Status".to_owned(),
            m.alert.status.as_str().to_owned(),
        ),
        (
            "X-Allerta-Msg-Type".to_owned(),
            m.alert.msg_type.as_str().to_owned(),
        ),
        // RFC 3834: no vacation replies flooding the civil protection inbox.
        ("Auto-Submitted".to_owned(), "auto-generated".to_owned()),
    ];
    // Citizens from the contact lists can leave; the one-click form (RFC
    // 8058) lets mail clients offer it without opening a browser.
    let is_citizen = matches!(
        m.delivery.recipient,
        super::Recipient::Contact(_) | super::Recipient::Subscriber(_)
    );
    if let Some(url) = &h.unsubscribe_url
        && is_citizen
    {
        headers.push((
            "List-Unsubscribe".to_owned(),
            format!("<{}>", url.replace("{token}", &m.delivery.token)),
        ));
        headers.push((
            "List-Unsubscribe-Post".to_owned(),
            "List-Unsubscribe=One-Click".to_owned(),
        ));
    }
    headers
}

/// The SMTP channel.
pub struct Smtp {
    settings: Settings,
    from: Mailbox,
    headers: HeaderConfig,
    idle: Mutex<Vec<Session>>,
    /// At most `max_connections` connections exist at once.
    slots: Semaphore,
    max_connections: usize,
    rate: Option<f64>,
    /// Set by the first channel-level failure: later sends fail the same
    /// way at once instead of knocking on the server again (a wrong
    /// password tried by every connection can lock the account).
    down: Mutex<Option<String>>,
    /// Recipients refused in a row with the same reply (see `REFUSALS_IN_A_ROW`).
    refusals: Mutex<(u32, String)>,
    description: String,
}

/// A server that refuses this many recipients in a row with the same 5xx
/// reply, none accepted in between, is refusing us, not them (relay
/// denied, a daily sending quota, a policy block): stop the channel rather
/// than fail the rest of the audience. A real list with this many
/// consecutive dead addresses is implausible.
const REFUSALS_IN_A_ROW: u32 = 20;

impl Smtp {
    pub fn new(config: &Email) -> Result<Self, BuildError> {
        let err = |m: String| BuildError(format!("channels.email: {m}"));
        let url = config
            .url
            .as_deref()
            .ok_or_else(|| err("url is required for transport = \"smtp\"".into()))?;
        let endpoint = Endpoint::parse(url).map_err(|m| err(format!("url: {m}")))?;
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| err(format!("from `{}`: {e}", config.from)))?;
        let tls = tls::TlsSetup::new(&endpoint.host, config.ca_file.as_deref()).map_err(err)?;
        let username = config
            .username
            .clone()
            .or_else(|| endpoint.url_username.clone());
        let configured = config
            .password
            .as_ref()
            .map(crate::config::SecretRef::resolve)
            .transpose()
            .map_err(BuildError)?;
        let password = configured.as_ref().or(endpoint.url_password.as_ref());
        let credentials = match (username, password) {
            (Some(user), Some(password)) => Some((
                user.clone(),
                Credentials::new(user, password.expose().to_owned()),
            )),
            (Some(_), None) => {
                return Err(err(
                    "username is set but no password (password, password_env or password_file)"
                        .into(),
                ));
            }
            (None, Some(_)) => return Err(err("a password is set but no username".into())),
            (None, None) => None,
        };
        let description = format!(
            "{}{}, {} connection{}",
            endpoint.display,
            credentials
                .as_ref()
                .map(|(u, _)| format!(" as {u}"))
                .unwrap_or_default(),
            config.max_connections,
            if config.max_connections == 1 { "" } else { "s" }
        );
        Ok(Self {
            settings: Settings {
                endpoint,
                tls,
                credentials,
                hello: ClientId::default(),
                timeout: config.timeout,
                from: from.email.clone(),
            },
            from,
            headers: HeaderConfig::new(config),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(config.max_connections.max(1)),
            max_connections: config.max_connections.max(1),
            rate: config.rate_per_second,
            down: Mutex::new(None),
            refusals: Mutex::new((0, String::new())),
            description,
        })
    }

    /// Opens one connection exactly as sending does (TLS, AUTH), offers
    /// our sender (MAIL FROM, then RSET) and closes it: nothing is sent.
    /// For readiness checks (`allerta check`).
    pub async fn probe(&self) -> Result<(), DeliveryError> {
        let mut session = Session::open(&self.settings).await?;
        let sender = session.try_sender(&self.settings).await;
        session.quit().await;
        sender
    }

    /// The MIME message for one delivery, and its envelope recipient.
    fn compose(&self, m: &Message<'_>) -> Result<(Address, Vec<u8>, String), DeliveryError> {
        let to: Address = m.delivery.address.parse().map_err(|e| {
            DeliveryError::permanent(format!(
                "`{}` is not an email address: {e}",
                m.delivery.address
            ))
        })?;
        let subject = m
            .content
            .subject
            .clone()
            .unwrap_or_else(|| m.alert.rendered.headline().to_owned());
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to.clone()))
            .subject(subject)
            .date_now();
        let mut message_id = String::new();
        for (name, value) in headers_for(m, &self.headers) {
            match name.as_str() {
                "Message-ID" => {
                    message_id = value.clone();
                    builder = builder.message_id(Some(value));
                }
                "Date" => {}
                _ => {
                    let name = HeaderName::new_from_ascii(name).map_err(|e| {
                        DeliveryError::ChannelDown {
                            reason: format!("bad header name: {e}"),
                        }
                    })?;
                    builder = builder.raw_header(HeaderValue::new(name, value));
                }
            }
        }
        let text = m.content.text.clone();
        let built = match &m.content.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(text, html.clone())),
            None => builder.singlepart(SinglePart::plain(text)),
        };
        let email = built
            .map_err(|e| DeliveryError::permanent(format!("cannot build the message: {e}")))?;
        Ok((to, email.formatted(), message_id))
    }

    fn stop_reason(&self) -> Option<String> {
        self.down.lock().map(|d| d.clone()).unwrap_or(None)
    }

    /// Remembers a channel-level failure for the sends that follow.
    fn note(&self, error: DeliveryError) -> DeliveryError {
        if let DeliveryError::ChannelDown { reason } = &error
            && let Ok(mut down) = self.down.lock()
        {
            down.get_or_insert_with(|| reason.clone());
        }
        error
    }

    /// Counts a refused recipient; turns the refusal that completes a
    /// streak into a channel stop (this delivery then stays pending).
    fn count_refusal(&self, reply: &str, alert_id: &str, error: DeliveryError) -> DeliveryError {
        let Ok(mut r) = self.refusals.lock() else {
            return error;
        };
        if r.1 == reply {
            r.0 += 1;
        } else {
            *r = (1, reply.to_owned());
        }
        if r.0 < REFUSALS_IN_A_ROW {
            return error;
        }
        DeliveryError::ChannelDown {
            reason: format!(
                "{} refused {} recipients in a row with `{reply}` (last: {error}): the server is refusing us, not them; once fixed, `allerta resume` sends the rest and `allerta retry {alert_id}` the refused ones",
                self.settings.endpoint.display, r.0
            ),
        }
    }

    fn take_idle(&self) -> Option<Session> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    fn put_idle(&self, session: Session) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(session);
        }
    }

    async fn open(&self) -> Result<Session, DeliveryError> {
        Session::open(&self.settings)
            .await
            .map_err(|e| self.note(e))
    }

    #[tracing::instrument(skip_all, fields(delivery = m.delivery.id))]
    async fn send_one(&self, m: &Message<'_>) -> Result<Accepted, DeliveryError> {
        if let Some(reason) = self.stop_reason() {
            return Err(DeliveryError::ChannelDown { reason });
        }
        let (to, bytes, message_id) = self.compose(m)?;
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| DeliveryError::transient("the SMTP channel is shutting down"))?;
        let mut fresh_only = false;
        loop {
            let idle = if fresh_only { None } else { self.take_idle() };
            let (mut session, reused) = match idle {
                Some(s) if !s.is_stale() => (s, true),
                Some(stale) => {
                    drop(stale);
                    (self.open().await?, false)
                }
                None => (self.open().await?, false),
            };
            match session.deliver(&self.settings, &to, &bytes).await {
                Ok(reply) => {
                    tracing::debug!(%message_id, %reply, "accepted by the SMTP server");
                    if let Ok(mut r) = self.refusals.lock() {
                        r.0 = 0;
                    }
                    self.put_idle(session);
                    return Ok(Accepted {
                        provider_id: Some(message_id),
                        delivered: false,
                    });
                }
                Err(f) if f.lost_before_mail && reused => {
                    // The server had closed this idle connection: nothing of
                    // the message went out, try once on a new one.
                    tracing::debug!(error = %f.error, "reused SMTP connection was dead; reconnecting");
                    fresh_only = true;
                }
                Err(f) => {
                    if f.reusable && session.reset(&self.settings).await {
                        self.put_idle(session);
                    }
                    let error = match &f.rejection {
                        Some(reply) => self.count_refusal(reply, m.alert.id.as_str(), f.error),
                        None => f.error,
                    };
                    return Err(self.note(error));
                }
            }
        }
    }
}

impl Channel for Smtp {
    fn id(&self) -> ChannelId {
        ChannelId::Email
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn concurrency(&self) -> usize {
        self.max_connections
    }

    fn rate_per_second(&self) -> Option<f64> {
        self.rate
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> SendFuture<'a> {
        Box::pin(self.send_one(message))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::channel::AlertContext;
    use crate::channel::{Delivery, Recipient};
    use crate::domain::{CapStatus, MsgType};
    use crate::template::{CapMeta, ChannelText, Rendered};

    fn alert(status: CapStatus) -> AlertContext {
        AlertContext {
            id: "20261126T210000-abcd".into(),
            status,
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
                channels: BTreeMap::new(),
            },
            created_at: "2026-11-26T21:00:00+00:00".into(),
            expires_at: None,
            thread_posts: Default::default(),
        }
    }

    fn delivery(recipient: Option<&str>) -> Delivery {
        Delivery {
            id: 42,
            address: "mario@example.org".into(),
            recipient: Recipient::from_column(recipient),
            language: "it".into(),
            attempts: 0,
            token: "t0k3n".into(),
        }
    }

    fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn headers_carry_ids_status_and_one_click_unsubscribe_for_contacts() {
        let a = alert(CapStatus::Exercise);
        let d = delivery(Some("c1"));
        let content = ChannelText {
            subject: Some("[ESERCITAZIONE] x".into()),
            text: "x".into(),
            html: None,
        };
        let m = Message {
            alert: &a,
            delivery: &d,
            content: &content,
        };
        let h = HeaderConfig {
            domain: "comune.example.it".into(),
            unsubscribe_url: Some("https://c.example.it/u?t={token}".into()),
        };
        let headers = headers_for(&m, &h);
        assert_eq!(
            get(&headers, "Message-ID"),
            Some("<20261126T210000-abcd.42@comune.example.it>")
        );
        assert_eq!(get(&headers, "X-Allerta-Status"), Some("Exercise"));
        assert_eq!(
            get(&headers, "List-Unsubscribe"),
            Some("<https://c.example.it/u?t=t0k3n>")
        );
        assert_eq!(
            get(&headers, "List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click")
        );
        assert!(get(&headers, "Date").is_some());
    }

    #[test]
    fn no_unsubscribe_without_a_url_or_a_citizen() {
        let a = alert(CapStatus::Actual);
        let content = ChannelText {
            subject: None,
            text: "x".into(),
            html: None,
        };
        let with_url = HeaderConfig {
            domain: "d.it".into(),
            unsubscribe_url: Some("https://c.example.it/u?t={token}".into()),
        };
        let without_url = HeaderConfig {
            domain: "d.it".into(),
            unsubscribe_url: None,
        };
        for (recipient, h) in [
            (None, &with_url),
            (Some("broadcast"), &with_url),
            (Some("c1"), &without_url),
        ] {
            let d = delivery(recipient);
            let m = Message {
                alert: &a,
                delivery: &d,
                content: &content,
            };
            let headers = headers_for(&m, h);
            assert!(get(&headers, "List-Unsubscribe").is_none(), "{recipient:?}");
            assert!(get(&headers, "List-Unsubscribe-Post").is_none());
        }
    }
}
