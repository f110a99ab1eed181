//! A Facebook Page through the Graph API: `POST /{page-id}/feed`
//! (`message`, `link`) for an alert, `POST /{post-id}/comments` on the
//! thread's first post for an update or a cancel. The Graph API has no
//! idempotency key, so before every write the Page's recent posts (or the
//! first post's comments) are read and searched for this alert's link —
//! the post of an attempt whose answer was lost is found and recorded,
//! never made twice. Without a link (no banner `public_url`) the search
//! matches the exact text posted since the alert was created. The token
//! travels in the `Authorization` header, never in a URL.
//!
//! Errors come as `{"error": {"code": …}}`: 190/102 (token expired or
//! invalid) and 10/200–299 (permission) are permanent with what to fix;
//! 4/17/32/341/613/80001 (rate limits) and 1/2 (temporary) are transient,
//! waiting for `Retry-After` or the `X-Business-Use-Case-Usage` estimate.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::http::{self, Reply};
use super::{alert_link, config, limits, post_text};
use crate::channel::{Accepted, BuildError, Channel, DeliveryError, Message, SendFuture};
use crate::config::Secret;
use crate::domain::ChannelId;

const NAME: &str = "Facebook";
const TOKEN_KEY: &str = "channels.facebook.access_token";

pub struct Facebook {
    client: reqwest::Client,
    api: String,
    page_id: String,
    token: Secret,
    link_base: Option<String>,
}

/// How a post is recognised as ours.
struct Marker<'a> {
    /// The alert's link, unique to the alert.
    link: Option<String>,
    text: &'a str,
    since: Option<DateTime<Utc>>,
}

impl Marker<'_> {
    fn matches(&self, item: &Value) -> bool {
        let message = item["message"].as_str().unwrap_or("");
        if let Some(link) = &self.link {
            return message.contains(link.as_str()) || item["link"].as_str() == Some(link.as_str());
        }
        let created = item["created_time"]
            .as_str()
            .and_then(|t| DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%z").ok())
            .map(|t| t.with_timezone(&Utc));
        let recent = match (created, self.since) {
            (Some(c), Some(s)) => c >= s - chrono::Duration::seconds(60),
            _ => true,
        };
        message == self.text && recent
    }
}

impl Facebook {
    pub fn new(c: &config::Facebook, link_base: Option<String>) -> Result<Self, BuildError> {
        Ok(Self {
            client: http::client()?,
            api: c.api_url.clone(),
            page_id: c.page_id.clone(),
            token: super::secret(ChannelId::Facebook, "access_token", c.access_token.as_ref())?,
            link_base,
        })
    }

    /// `GET {edge}` and the id of the first item our marker matches;
    /// `None` when the edge's object is gone.
    async fn find(
        &self,
        edge: &str,
        marker: &Marker<'_>,
    ) -> Result<Option<Option<String>>, DeliveryError> {
        let response = self
            .client
            .get(format!("{}/{edge}", self.api))
            .query(&[("fields", "id,message,link,created_time"), ("limit", "50")])
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| http::network_error(NAME, &e))?;
        let reply = Reply::read(NAME, response).await?;
        if is_gone(&reply) {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(failure(&reply));
        }
        let json = reply.json();
        let Some(items) = json["data"].as_array() else {
            return Err(DeliveryError::transient(format!(
                "{NAME}: {edge} answered without data"
            )));
        };
        Ok(Some(
            items
                .iter()
                .find(|item| marker.matches(item))
                .and_then(|item| item["id"].as_str().map(str::to_owned)),
        ))
    }

    /// Looks for our post under `edge`, and writes it there if it is not
    /// found: its id, or `None` when the edge's object is gone.
    async fn publish(
        &self,
        m: &Message<'_>,
        edge: &str,
        marker: &Marker<'_>,
        form: &[(&str, &str)],
    ) -> Result<Option<String>, DeliveryError> {
        match self.find(edge, marker).await? {
            None => return Ok(None),
            Some(Some(id)) => {
                tracing::info!(delivery = m.delivery.id, %id, "Facebook post already made by an earlier attempt");
                return Ok(Some(id));
            }
            Some(None) => {}
        }
        let response = self
            .client
            .post(format!("{}/{edge}", self.api))
            .bearer_auth(self.token.expose())
            .form(form)
            .send()
            .await
            .map_err(|e| http::network_error(NAME, &e))?;
        let reply = Reply::read(NAME, response).await?;
        if is_gone(&reply) {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(failure(&reply));
        }
        match reply.json()["id"].as_str() {
            Some(id) => Ok(Some(id.to_owned())),
            None => Err(DeliveryError::transient(format!(
                "{NAME}: {} without a post id",
                reply.status
            ))),
        }
    }

    async fn post(&self, m: &Message<'_>) -> Result<Accepted, DeliveryError> {
        let text = post_text(self.link_base.as_deref(), m);
        if let Some(p) = limits::problem(ChannelId::Facebook, &text) {
            return Err(DeliveryError::permanent(p));
        }
        let link = self
            .link_base
            .as_deref()
            .map(|b| alert_link(b, &m.alert.id));
        let marker = Marker {
            link: link.clone(),
            text: &text,
            since: DateTime::parse_from_rfc3339(&m.alert.created_at)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        };
        let delivered = |id: String| Accepted {
            provider_id: Some(id),
            delivered: true,
        };
        // A follow-up is a comment on the thread's first post…
        if let Some(thread) = m.alert.thread_posts.get(&ChannelId::Facebook) {
            let edge = format!("{}/comments", thread.root);
            let form = [("message", text.as_str())];
            if let Some(id) = self.publish(m, &edge, &marker, &form).await? {
                return Ok(delivered(id));
            }
            // …unless someone deleted that post: then the follow-up is a
            // post of its own rather than lost.
            tracing::warn!(root = %thread.root, "Facebook: the thread's first post is gone; posting on the Page");
        }
        let mut form = vec![("message", text.as_str())];
        if let Some(link) = link.as_deref() {
            form.push(("link", link));
        }
        let edge = format!("{}/feed", self.page_id);
        match self.publish(m, &edge, &marker, &form).await? {
            Some(id) => Ok(delivered(id)),
            None => Err(DeliveryError::permanent(format!(
                "Facebook: Page {} does not exist or this token cannot see it: check channels.facebook.page_id",
                self.page_id
            ))),
        }
    }
}

/// Graph's "object does not exist" (code 100, subcode 33): a deleted post.
fn is_gone(reply: &Reply) -> bool {
    let json = reply.json();
    json["error"]["code"].as_i64() == Some(100)
        && json["error"]["error_subcode"].as_i64() == Some(33)
}

/// The wait the Graph API asks for after a rate limit: `Retry-After`, else
/// the largest `estimated_time_to_regain_access` (minutes) of
/// `X-Business-Use-Case-Usage`, else a minute.
fn rate_wait(reply: &Reply) -> Duration {
    if let Some(d) = http::retry_after(&reply.headers, Utc::now()) {
        return d;
    }
    let minutes = reply
        .headers
        .get("x-business-use-case-usage")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .and_then(|usage| {
            usage
                .as_object()?
                .values()
                .flat_map(|entries| entries.as_array().cloned().unwrap_or_default())
                .filter_map(|e| e["estimated_time_to_regain_access"].as_u64())
                .max()
        });
    match minutes {
        Some(m) => Duration::from_secs((m * 60).max(1)),
        None => Duration::from_secs(60),
    }
}

fn failure(reply: &Reply) -> DeliveryError {
    let json = reply.json();
    let error = &json["error"];
    let Some(code) = error["code"].as_i64() else {
        return http::failure(NAME, reply, &http::error_text(reply), TOKEN_KEY, None);
    };
    let message = error["message"].as_str().unwrap_or("").to_owned();
    let detail: String = format!("code {code}: {message}")
        .chars()
        .take(300)
        .collect();
    match code {
        190 | 102 => DeliveryError::permanent(format!(
            "Facebook refused the Page access token ({detail}): get a new long-lived Page token (docs/social.md) into {TOKEN_KEY}, then `allerta retry`"
        )),
        10 | 200..=299 => DeliveryError::permanent(format!(
            "Facebook: the token may not use this Page ({detail}): it needs pages_manage_posts and pages_read_engagement (docs/social.md)"
        )),
        4 | 17 | 32 | 341 | 613 | 80001 => DeliveryError::Transient {
            reason: format!("Facebook: rate limited ({detail})"),
            retry_after: Some(rate_wait(reply)),
        },
        1 | 2 => DeliveryError::Transient {
            reason: format!("Facebook: temporary error ({detail})"),
            retry_after: http::retry_after(&reply.headers, Utc::now()),
        },
        _ if reply.status.is_server_error() || reply.status.as_u16() == 429 => {
            http::failure(NAME, reply, &detail, TOKEN_KEY, Some(rate_wait(reply)))
        }
        _ => DeliveryError::permanent(format!("Facebook: {detail}")),
    }
}

/// For `allerta check`: `GET /{page-id}?fields=id,name` (nothing posted).
pub async fn reachable(c: &config::Facebook) -> Result<String, String> {
    let token = super::secret(ChannelId::Facebook, "access_token", c.access_token.as_ref())
        .map_err(|e| e.0)?;
    let client = http::client().map_err(|e| e.0)?;
    let response = client
        .get(format!("{}/{}", c.api_url, c.page_id))
        .query(&[("fields", "id,name")])
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|e| http::network_error(NAME, &e).to_string())?;
    let reply = Reply::read(NAME, response)
        .await
        .map_err(|e| e.to_string())?;
    if !reply.status.is_success() {
        return Err(failure(&reply).to_string());
    }
    let json = reply.json();
    match json["name"].as_str() {
        Some(name) => Ok(format!("Page \"{name}\" ({})", c.page_id)),
        None => Err(format!("{NAME}: the Page answered without a name")),
    }
}

impl Channel for Facebook {
    fn id(&self) -> ChannelId {
        ChannelId::Facebook
    }

    fn describe(&self) -> String {
        format!("Facebook Page {} at {}", self.page_id, self.api)
    }

    fn concurrency(&self) -> usize {
        1
    }

    fn rate_per_second(&self) -> Option<f64> {
        None
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> SendFuture<'a> {
        Box::pin(self.post(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn reply(status: u16, body: &str, usage: Option<&str>) -> Reply {
        let mut headers = HeaderMap::new();
        if let Some(u) = usage {
            headers.insert(
                "x-business-use-case-usage",
                HeaderValue::from_str(u).expect("h"),
            );
        }
        Reply {
            status: StatusCode::from_u16(status).expect("status"),
            headers,
            body: body.to_owned(),
        }
    }

    #[test]
    fn graph_error_codes_say_whether_to_retry() {
        let expired = r#"{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"A"}}"#;
        let DeliveryError::Permanent { reason, .. } = failure(&reply(400, expired, None)) else {
            panic!("an expired token is permanent")
        };
        assert!(reason.contains(TOKEN_KEY), "{reason}");
        let limited = r#"{"error":{"message":"(#32) Page request limit reached","type":"OAuthException","code":32,"fbtrace_id":"B"}}"#;
        let usage = r#"{"123":[{"type":"pages","call_count":100,"total_cputime":10,"total_time":10,"estimated_time_to_regain_access":2}]}"#;
        assert!(matches!(
            failure(&reply(400, limited, Some(usage))),
            DeliveryError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(120)
        ));
        let down =
            r#"{"error":{"message":"An unknown error occurred","type":"OAuthException","code":1}}"#;
        assert!(matches!(
            failure(&reply(500, down, None)),
            DeliveryError::Transient { .. }
        ));
        assert!(matches!(
            failure(&reply(502, "<html>", None)),
            DeliveryError::Transient { .. }
        ));
        let dup = r#"{"error":{"message":"Duplicate status message","type":"OAuthException","code":506}}"#;
        assert!(matches!(
            failure(&reply(400, dup, None)),
            DeliveryError::Permanent { .. }
        ));
    }
}
