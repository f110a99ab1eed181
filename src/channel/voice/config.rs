//! `[channels.voice]` (SPEC §14): where calls are placed, where the
//! provider fetches the call's instructions and posts its callbacks, and
//! how often an unanswered call is tried again.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::channel::sms::http_config::SmsHttp;
use crate::config::SecretRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoiceTransport {
    Http,
    Outbox,
}

/// How `allerta serve` authenticates the provider's requests on top of
/// the per-delivery key every URL carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signature {
    /// `X-Twilio-Signature`: HMAC-SHA1 of the full URL and the sorted POST
    /// parameters, keyed with the auth token.
    #[default]
    Twilio,
    /// The per-delivery key alone (providers that sign nothing).
    None,
}

/// How to ask the provider about a call placed earlier (after a crash,
/// before calling again): a GET whose JSON reply says the call's status.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    /// URL template; `{{ provider_id }}` is the call's id (Twilio:
    /// `…/Accounts/{Sid}/Calls/{{ provider_id }}.json`).
    pub url: String,
    /// JSON pointer to the status in the reply (default `/status`).
    #[serde(default = "default_status_pointer")]
    pub status_pointer: String,
}

fn default_status_pointer() -> String {
    "/status".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVoice {
    pub transport: VoiceTransport,
    pub url: Option<String>,
    pub account_sid: Option<String>,
    pub auth_token: Option<String>,
    pub auth_token_env: Option<String>,
    pub auth_token_file: Option<PathBuf>,
    pub from: Option<String>,
    pub callback_url: Option<String>,
    pub max_concurrent_calls: Option<usize>,
    pub rate_per_second: Option<f64>,
    pub attempts: Option<u32>,
    pub retry_after: Option<String>,
    #[serde(default)]
    pub signature: Signature,
    pub http: Option<SmsHttp>,
    pub lookup: Option<Lookup>,
}

#[derive(Debug)]
pub struct Voice {
    pub transport: VoiceTransport,
    /// The full `…/Accounts/{Sid}/Calls.json` URL (or another provider's).
    pub url: Option<String>,
    /// The basic-auth user (Twilio's Account SID).
    pub account_sid: Option<String>,
    /// The basic-auth password, also the key of Twilio's signatures.
    pub auth_token: Option<SecretRef>,
    /// The calling number (E.164).
    pub from: Option<String>,
    /// Public base URL of `allerta serve`'s voice routes, e.g.
    /// `https://allerta.comune.example.it/voice`.
    pub callback_url: Option<String>,
    pub max_concurrent_calls: usize,
    pub rate_per_second: Option<f64>,
    /// Calls in total to one number when busy or unanswered (default 3).
    pub attempts: u32,
    /// Time between two such calls (default 5m).
    pub retry_after: Duration,
    pub signature: Signature,
    pub http: Option<SmsHttp>,
    pub lookup: Option<Lookup>,
}

impl RawVoice {
    /// Checks and completes the table; `auth_token` is resolved by the
    /// caller (the config's secret rules).
    pub fn resolve(self, auth_token: Option<SecretRef>) -> Result<Voice, (String, String)> {
        let live = self.transport == VoiceTransport::Http;
        let bad = |key: &str, message: &str| (format!("channels.voice.{key}"), message.to_owned());
        if live {
            for (key, value) in [
                ("url", &self.url),
                ("from", &self.from),
                ("callback_url", &self.callback_url),
            ] {
                if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    return Err(bad(key, "required for transport = \"http\""));
                }
            }
            if self.http.is_none() {
                return Err(bad(
                    "http",
                    "transport = \"http\" needs a [channels.voice.http] table (fields, success rule, provider id); see examples/voice-twilio.toml",
                ));
            }
            if self.signature == Signature::Twilio && auth_token.is_none() {
                return Err(bad(
                    "auth_token",
                    "signature = \"twilio\" needs auth_token_env or auth_token_file (the key of the signatures)",
                ));
            }
        }
        if let Some(url) = &self.callback_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(bad("callback_url", "must be an http:// or https:// URL"));
        }
        let attempts = self.attempts.unwrap_or(3);
        if attempts == 0 {
            return Err(bad("attempts", "must be at least 1 (calls in total)"));
        }
        let retry_after = match &self.retry_after {
            None => Duration::from_secs(300),
            Some(v) => humantime::parse_duration(v)
                .map_err(|e| bad("retry_after", &format!("`{v}` is not a duration ({e})")))?,
        };
        if let Some(r) = self.rate_per_second
            && !(r > 0.0 && r.is_finite())
        {
            return Err(bad(
                "rate_per_second",
                &format!("must be a positive number, got {r}"),
            ));
        }
        Ok(Voice {
            transport: self.transport,
            url: self.url,
            account_sid: self.account_sid,
            auth_token,
            from: self.from,
            callback_url: self
                .callback_url
                .map(|u| u.trim_end_matches('/').to_owned()),
            max_concurrent_calls: self.max_concurrent_calls.unwrap_or(4).clamp(1, 64),
            rate_per_second: self.rate_per_second,
            attempts,
            retry_after,
            signature: self.signature,
            http: self.http,
            lookup: self.lookup,
        })
    }
}
