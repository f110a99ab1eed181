//! SMS (SPEC §8.2): the Kannel `sendsms` transport and a configurable HTTP
//! transport for commercial gateways. Both guard against what gateways do
//! silently (an empty SMS sent, a long text cut, a surrogate pair split),
//! and both ask for delivery reports at `allerta serve`, authenticated by
//! the `[serve]` shared token and bound to one delivery by its own token.

pub mod http;
pub mod http_config;
pub mod kannel;

use std::time::Duration;

use super::{BuildError, DeliveryError, Message};
use crate::config::{Config, Secret, Sms};
use crate::template::gsm;

/// Checks a text before any request: never an empty SMS, never more parts
/// than `max_segments` (the CLI refuses earlier; this is the last guard).
pub fn check_text(text: &str, max_segments: usize) -> Result<gsm::SmsAnalysis, DeliveryError> {
    if text.trim().is_empty() {
        return Err(DeliveryError::permanent(
            "empty SMS text: never sent (a gateway would send an empty message)",
        ));
    }
    let a = gsm::analyze(text);
    if a.segments > max_segments {
        return Err(DeliveryError::permanent(format!(
            "{} SMS segments exceed max_segments = {max_segments}: not sent (a gateway would cut it)",
            a.segments
        )));
    }
    Ok(a)
}

/// Where delivery reports go, with the shared token that `serve` checks.
#[derive(Clone)]
pub struct ReportTarget {
    pub url: String,
    pub token: Secret,
}

impl ReportTarget {
    /// `None` when no `dlr_url` is configured (deliveries then stay `sent`).
    pub fn from_config(config: &Config, sms: &Sms) -> Result<Option<Self>, BuildError> {
        let Some(url) = sms.dlr_url.clone() else {
            return Ok(None);
        };
        let token = config
            .serve
            .as_ref()
            .ok_or_else(|| {
                BuildError(
                    "channels.sms.dlr_url is set but there is no [serve] section with a dlr_token (dlr_token_env / dlr_token_file): delivery reports must be authenticated".into(),
                )
            })?
            .dlr_token()
            .map_err(|m| BuildError(format!("channels.sms.dlr_url is set: {m}")))?;
        if !token.expose().bytes().all(is_unreserved) {
            return Err(BuildError(
                "serve.dlr_token: use letters, digits and - . _ ~ only (it travels in a URL, and Kannel rewrites % escapes)".into(),
            ));
        }
        Ok(Some(Self { url, token }))
    }

    /// The callback URL for one delivery: our delivery id, the delivery's
    /// own token and the shared token.
    pub fn for_delivery(&self, m: &Message<'_>) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}id={}&k={}&token={}",
            self.url,
            m.delivery.id,
            encode(m.delivery.token.as_bytes()),
            self.token.expose()
        )
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes every byte that is not unreserved (RFC 3986), so binary
/// values (a UDH) and UTF-8 text travel exactly.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The shared HTTP client (rustls, timeouts: an SMS gateway that hangs is a
/// transient failure, never a stuck alert).
pub fn client(timeout: Duration) -> Result<reqwest::Client, BuildError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| BuildError(format!("SMS HTTP client: {e}")))
}

/// A request that did not get an HTTP answer: refused, reset, timed out.
/// A timeout means "outcome unknown": the retry may duplicate an SMS, which
/// for an alert beats losing it.
pub fn network_error(gateway: &str, e: &reqwest::Error) -> DeliveryError {
    let what = if e.is_timeout() {
        "timed out (outcome unknown, will retry)"
    } else if e.is_connect() {
        "unreachable"
    } else {
        "request failed"
    };
    DeliveryError::transient(format!("{gateway} {what}: {}", without_secrets(e)))
}

/// reqwest errors include the URL, whose query may hold the password.
fn without_secrets(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        let mut shown = url.clone();
        shown.set_query(None);
        text = text.replace(url.as_str(), shown.as_str());
    }
    text
}

/// `Retry-After` in seconds, when the gateway sent one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// First line of a reply body, trimmed, for messages and the ledger.
pub fn snippet(body: &str) -> String {
    let line = body.lines().next().unwrap_or("").trim();
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_binary_and_utf8_exact() {
        assert_eq!(encode(&[0x05, 0x00, 0x03, 0xA7]), "%05%00%03%A7");
        assert_eq!(encode("è +".as_bytes()), "%C3%A8%20%2B");
        assert_eq!(encode(b"a-Z_0.~"), "a-Z_0.~");
    }

    #[test]
    fn empty_and_too_long_texts_are_refused() {
        assert!(matches!(
            check_text("  ", 3),
            Err(DeliveryError::Permanent { .. })
        ));
        let long = "a".repeat(153 * 3 + 1);
        assert!(matches!(
            check_text(&long, 3),
            Err(DeliveryError::Permanent { .. })
        ));
        assert_eq!(check_text(&"a".repeat(153 * 3), 3).unwrap().segments, 3);
    }
}
