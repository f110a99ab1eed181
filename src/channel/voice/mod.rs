//! Voice calls (SPEC §14): a recorded-voice call for people without a
//! smartphone. The `http` transport places the call with the shared
//! configurable request (Twilio's Calls resource is the shipped example,
//! `examples/voice-twilio.toml`); the provider then fetches the call's
//! instructions from `allerta serve` (`/voice/twiml`) and posts its status
//! and keypress callbacks there (`/voice/status`, `/voice/gather`), each
//! URL bound to one delivery by its id and token.
//!
//! Outcome unknown after a crash: every call's id is written to the ledger
//! the moment the provider accepts it, before anything else. A delivery
//! sent again (after a crash, or for the next try of a busy line) first
//! asks the provider about its last call when that call's end was never
//! heard, and does not call again while it is still queued, ringing or in
//! progress, or when it was answered.

pub mod config;
pub mod signature;
pub mod speech;
pub mod twiml;

use std::sync::{Arc, Mutex};

use serde::Serialize;

use self::config::{Lookup, Voice};
use super::http_request::{ConfiguredRequest, Provider, pointer_text};
use super::sms::http_config::HttpAuth;
use super::{Accepted, BuildError, Channel, DeliveryError, Message, SendFuture};
use crate::config::{Config, Secret};
use crate::domain::ChannelId;
use crate::ledger::{CallRow, Ledger, now_ms};

const PROVIDER: Provider = Provider {
    key: "channels.voice",
    name: "voice provider",
    credentials: "channels.voice account_sid/auth_token",
};

/// The URL of one of this delivery's voice routes under `callback_url`.
pub fn route_url(base: &str, route: &str, delivery_id: i64, token: &str) -> String {
    format!(
        "{}/{route}?d={delivery_id}&k={}",
        base.trim_end_matches('/'),
        super::sms::encode(token.as_bytes())
    )
}

/// What the request's templates may use.
#[derive(Serialize)]
struct Vars<'a> {
    to: &'a str,
    to_digits: &'a str,
    from: &'a str,
    /// Where the provider fetches the call's instructions (TwiML).
    twiml_url: String,
    /// Where it posts the call's status.
    status_url: String,
    /// Where the keypress goes (also inside the TwiML).
    gather_url: String,
    /// The spoken text (for providers that take it in the request).
    text: &'a str,
    language: &'a str,
    reference: String,
    alert_id: &'a str,
    account_sid: &'a str,
}

/// What the provider said of an earlier call.
enum Previous {
    /// Still queued, ringing or in progress: its callback will come.
    Live,
    /// Answered and played.
    Answered,
    /// Over without an answer (busy, no answer): call again.
    Unanswered,
    /// The number does not work (failed, canceled).
    Failed(String),
    /// The provider does not know it, or cannot be asked: call again.
    Unknown,
}

pub struct HttpVoice {
    request: ConfiguredRequest,
    lookup: Option<Lookup>,
    env: minijinja::Environment<'static>,
    from: String,
    callback_url: String,
    account_sid: String,
    attempts: u32,
    concurrency: usize,
    rate: Option<f64>,
    database: crate::ledger::Database,
    /// Opened at the first call (so `--dry-run` creates nothing).
    ledger: Arc<Mutex<Option<Ledger>>>,
}

impl HttpVoice {
    pub fn new(config: &Config, voice: &Voice) -> Result<Self, BuildError> {
        let spec = voice.http.clone().ok_or_else(|| {
            BuildError("transport = \"http\" needs a [channels.voice.http] table".into())
        })?;
        let token: Option<Secret> = voice
            .auth_token
            .as_ref()
            .map(crate::config::SecretRef::resolve)
            .transpose()
            .map_err(BuildError)?;
        if spec.auth != HttpAuth::None && token.is_none() {
            return Err(BuildError(
                "channels.voice.http.auth needs channels.voice.auth_token (auth_token_env / auth_token_file)".into(),
            ));
        }
        let required = |v: &Option<String>, key: &str| {
            v.clone()
                .ok_or_else(|| BuildError(format!("channels.voice.{key} is required for http")))
        };
        let url = required(&voice.url, "url")?;
        let channel = Self {
            request: ConfiguredRequest::new(PROVIDER, spec, url, voice.account_sid.clone(), token)?,
            lookup: voice.lookup.clone(),
            env: {
                let mut env = minijinja::Environment::new();
                env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
                env
            },
            from: required(&voice.from, "from")?,
            callback_url: required(&voice.callback_url, "callback_url")?,
            account_sid: voice.account_sid.clone().unwrap_or_default(),
            attempts: voice.attempts,
            concurrency: voice.max_concurrent_calls,
            rate: voice.rate_per_second,
            database: config.general.database.clone(),
            ledger: Arc::new(Mutex::new(None)),
        };
        let sample = channel.vars("+390000000000", "test", "it", 1, "t", "test");
        channel.request.render(&sample).map_err(BuildError)?;
        if let Some(l) = &channel.lookup {
            channel.lookup_url(l, "CA0").map_err(BuildError)?;
        }
        Ok(channel)
    }

    fn vars<'a>(
        &'a self,
        to: &'a str,
        text: &'a str,
        language: &'a str,
        id: i64,
        token: &str,
        alert_id: &'a str,
    ) -> Vars<'a> {
        Vars {
            to,
            to_digits: to.trim_start_matches('+'),
            from: &self.from,
            twiml_url: route_url(&self.callback_url, "twiml", id, token),
            status_url: route_url(&self.callback_url, "status", id, token),
            gather_url: route_url(&self.callback_url, "gather", id, token),
            text,
            language,
            reference: id.to_string(),
            alert_id,
            account_sid: &self.account_sid,
        }
    }

    fn lookup_url(&self, lookup: &Lookup, sid: &str) -> Result<String, String> {
        self.env
            .render_str(
                &lookup.url,
                minijinja::context! { provider_id => sid, account_sid => &self.account_sid },
            )
            .map_err(|e| format!("channels.voice.lookup.url: {e}"))
    }

    /// Runs `f` on this channel's own ledger connection (blocking pool).
    async fn with_ledger<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ledger) -> Result<T, crate::ledger::LedgerError> + Send + 'static,
    ) -> Result<T, String> {
        let slot = self.ledger.clone();
        let path = self.database.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = Some(Ledger::open(&path).map_err(|e| e.to_string())?);
            }
            match guard.as_ref() {
                Some(l) => f(l).map_err(|e| e.to_string()),
                None => Err("ledger not open".into()),
            }
        })
        .await
        .map_err(|e| format!("ledger task failed: {e}"))?
    }

    /// Asks the provider about an earlier call.
    async fn previous(&self, sid: &str) -> Result<Previous, DeliveryError> {
        let Some(lookup) = &self.lookup else {
            return Ok(Previous::Unknown);
        };
        let url = self
            .lookup_url(lookup, sid)
            .map_err(|reason| DeliveryError::ChannelDown { reason })?;
        let response = self
            .request
            .authenticate(self.request.client().get(&url))
            .send()
            .await
            .map_err(|e| super::sms::network_error("voice provider (call lookup)", &e))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if status == 404 {
            return Ok(Previous::Unknown);
        }
        if !(200..300).contains(&status) {
            // Not knowing is no reason to call twice: try again later.
            return Err(DeliveryError::transient(format!(
                "voice provider: lookup of call {sid} answered {status} {}",
                super::sms::snippet(&body)
            )));
        }
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let said = pointer_text(&json, &lookup.status_pointer).unwrap_or_default();
        let now = now_ms();
        let (s, word) = (sid.to_owned(), said.clone());
        if let Err(e) = self
            .with_ledger(move |l| l.note_call_status(&s, &word, now))
            .await
        {
            tracing::warn!(error = %e, "voice: could not note the call's status");
        }
        Ok(match said.as_str() {
            "queued" | "initiated" | "ringing" | "in-progress" => Previous::Live,
            "completed" => Previous::Answered,
            "busy" | "no-answer" => Previous::Unanswered,
            "failed" | "canceled" => Previous::Failed(said),
            _ => Previous::Unknown,
        })
    }

    async fn call(&self, m: &Message<'_>) -> Result<Accepted, DeliveryError> {
        let text = &m.content.text;
        if text.trim().is_empty() {
            return Err(DeliveryError::permanent(
                "empty voice text: never called (the call would say nothing)",
            ));
        }
        let id = m.delivery.id;
        let calls: Vec<CallRow> =
            self.with_ledger(move |l| l.voice_calls(id))
                .await
                .map_err(|reason| DeliveryError::ChannelDown {
                    reason: format!("voice: the ledger cannot be read: {reason}"),
                })?;
        if let Some(last) = calls.last()
            && last
                .status
                .as_deref()
                .is_none_or(|s| !crate::ledger::is_final_call_status(s))
        {
            // Its end was never heard (a crash, or serve was down).
            match self.previous(&last.sid).await? {
                Previous::Live => {
                    return Ok(Accepted {
                        provider_id: Some(last.sid.clone()),
                        delivered: false,
                    });
                }
                Previous::Answered => {
                    return Ok(Accepted {
                        provider_id: Some(last.sid.clone()),
                        delivered: true,
                    });
                }
                Previous::Failed(status) => {
                    return Err(DeliveryError::permanent(format!(
                        "call {} {status}: not called again",
                        last.sid
                    )));
                }
                Previous::Unanswered | Previous::Unknown => {}
            }
        }
        if calls.len() as u32 >= self.attempts {
            return Err(DeliveryError::permanent(format!(
                "{} calls placed, none answered: not called again (channels.voice.attempts = {})",
                calls.len(),
                self.attempts
            )));
        }
        let vars = self.vars(
            &m.delivery.address,
            text,
            &m.delivery.language,
            id,
            &m.delivery.token,
            &m.alert.id,
        );
        let sid = self.request.send(&vars).await?.ok_or_else(|| DeliveryError::ChannelDown {
            reason: "the voice provider accepted the call but its reply has no call id: check channels.voice.http.provider_id_json_pointer (Twilio: \"/sid\")".into(),
        })?;
        let (s, now) = (sid.clone(), now_ms());
        if let Err(e) = self.with_ledger(move |l| l.record_call(id, &s, now)).await {
            // The call is placed: report it as sent anyway (the engine
            // records the id too); only a crash now could call twice.
            tracing::error!(error = %e, delivery = id, "voice: could not record the call id");
        }
        Ok(Accepted {
            provider_id: Some(sid),
            delivered: false,
        })
    }
}

impl Channel for HttpVoice {
    fn id(&self) -> ChannelId {
        ChannelId::Voice
    }

    fn describe(&self) -> String {
        format!(
            "voice provider {} {}",
            self.request.method(),
            self.request.shown_url()
        )
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn rate_per_second(&self) -> Option<f64> {
        self.rate
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> SendFuture<'a> {
        Box::pin(self.call(message))
    }
}
