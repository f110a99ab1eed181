//! HTTP shared by the three networks: one reqwest client with timeouts,
//! and the mapping of failures to what the engine should do. A request that
//! got no answer after it was sent (reset, timeout) has an unknown outcome:
//! transient, and the next attempt's look-up finds the post if it was made.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::channel::{BuildError, DeliveryError};

/// The client: rustls, 10 s to connect, 30 s for a whole request.
pub fn client() -> Result<reqwest::Client, BuildError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("allerta/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| BuildError(format!("social HTTP client: {e}")))
}

/// A request without an HTTP answer. reqwest's text names the URL, which
/// holds no secret here (tokens travel in headers or bodies).
pub fn network_error(network: &str, e: &reqwest::Error) -> DeliveryError {
    let what = if e.is_connect() {
        "unreachable"
    } else if e.is_timeout() {
        "timed out (outcome unknown: the next attempt looks for the post before posting again)"
    } else {
        "no answer (outcome unknown: the next attempt looks for the post before posting again)"
    };
    let mut text = format!("{network}: {what}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    DeliveryError::transient(text)
}

/// A reply's status, headers and body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn read(network: &str, r: reqwest::Response) -> Result<Self, DeliveryError> {
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.text().await.map_err(|e| network_error(network, &e))?;
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// `Retry-After` in seconds, or as an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    until(at.with_timezone(&Utc), now)
}

/// The time from `now` to `at`, at least one second (a reset already past
/// still means "not this very instant").
pub fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Duration> {
    let ms = (at - now).num_milliseconds().max(1000);
    Some(Duration::from_millis(ms as u64))
}

/// A reset header holding a time: RFC 3339 (Mastodon's `X-RateLimit-Reset`)
/// or seconds since the epoch (Bluesky's `RateLimit-Reset`).
pub fn reset_header(headers: &HeaderMap, name: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    let at = match value.parse::<i64>() {
        Ok(epoch) => DateTime::from_timestamp(epoch, 0)?,
        Err(_) => DateTime::parse_from_rfc3339(value)
            .ok()?
            .with_timezone(&Utc),
    };
    until(at, now)
}

/// What an error status means for a post: 401/403 → permanent (the token
/// is wrong: every retry would fail the same way; the message says which
/// key to fix), 422 → permanent (the network refused this text), 429 →
/// transient after `rate_reset`, 408 and 5xx → transient, other 4xx →
/// permanent.
pub fn failure(
    network: &str,
    reply: &Reply,
    detail: &str,
    token_key: &str,
    rate_reset: Option<Duration>,
) -> DeliveryError {
    let status = reply.status;
    let detail: String = detail.chars().take(300).collect();
    match status.as_u16() {
        401 | 403 => DeliveryError::permanent(format!(
            "{network} refused the credentials ({status}: {detail}): check {token_key} (docs/social.md says how to get a new one), then `allerta retry`"
        )),
        422 => DeliveryError::permanent(format!("{network} refused the post ({status}: {detail})")),
        429 => DeliveryError::Transient {
            reason: format!("{network}: rate limited ({status}: {detail})"),
            retry_after: rate_reset.or_else(|| retry_after(&reply.headers, Utc::now())),
        },
        408 | 500..=599 => DeliveryError::Transient {
            reason: format!("{network}: server error ({status}: {detail})"),
            retry_after: retry_after(&reply.headers, Utc::now()),
        },
        _ => DeliveryError::permanent(format!("{network}: {status}: {detail}")),
    }
}

/// The `error` text of a JSON error body (Mastodon `{"error": …}`, AT
/// Protocol `{"error": …, "message": …}`), else the body's first line.
pub fn error_text(reply: &Reply) -> String {
    let json = reply.json();
    let error = json["error"].as_str();
    let message = json["message"].as_str();
    match (error, message) {
        (Some(e), Some(m)) => format!("{e}: {m}"),
        (Some(e), None) => e.to_owned(),
        (None, Some(m)) => m.to_owned(),
        (None, None) => reply.body.lines().next().unwrap_or("").trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn reply(status: u16, headers: &[(&'static str, &str)]) -> Reply {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        Reply {
            status: StatusCode::from_u16(status).expect("status"),
            headers: map,
            body: String::new(),
        }
    }

    #[test]
    fn statuses_say_whether_to_retry() {
        let key = "channels.mastodon.access_token";
        for s in [401, 403, 422, 404] {
            assert!(
                matches!(
                    failure("M", &reply(s, &[]), "x", key, None),
                    DeliveryError::Permanent { .. }
                ),
                "{s}"
            );
        }
        let DeliveryError::Permanent { reason, .. } =
            failure("M", &reply(401, &[]), "x", key, None)
        else {
            panic!("401 is permanent")
        };
        assert!(reason.contains(key), "{reason}");
        for s in [429, 500, 502, 503, 408] {
            assert!(
                matches!(
                    failure("M", &reply(s, &[]), "x", key, None),
                    DeliveryError::Transient { .. }
                ),
                "{s}"
            );
        }
        let r = reply(503, &[("retry-after", "7")]);
        assert!(matches!(
            failure("M", &r, "x", key, None),
            DeliveryError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(7)
        ));
    }

    #[test]
    fn reset_headers_in_both_spellings() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let r = reply(429, &[("x-ratelimit-reset", "2026-12-01T10:00:05.000Z")]);
        assert_eq!(
            reset_header(&r.headers, "x-ratelimit-reset", now),
            Some(Duration::from_secs(5))
        );
        let epoch = (now.timestamp() + 3).to_string();
        let r = reply(429, &[("ratelimit-reset", &epoch)]);
        assert_eq!(
            reset_header(&r.headers, "ratelimit-reset", now),
            Some(Duration::from_secs(3))
        );
        // Already past: still wait a moment.
        let r = reply(429, &[("ratelimit-reset", "0")]);
        assert_eq!(
            reset_header(&r.headers, "ratelimit-reset", now),
            Some(Duration::from_secs(1))
        );
    }
}
