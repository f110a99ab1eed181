//! Mastodon: `POST /api/v1/statuses` with the delivery's token as
//! `Idempotency-Key`, so a retry after an unknown outcome gets the status
//! already created instead of a second one (Mastodon keeps keys for an
//! hour). A follow-up is a reply (`in_reply_to_id`) to the thread's latest
//! post. `check` calls `GET /api/v1/accounts/verify_credentials`.

use chrono::Utc;
use serde_json::json;

use super::http::{self, Reply};
use super::{config, limits, post_text};
use crate::channel::{Accepted, BuildError, Channel, DeliveryError, Message, SendFuture};
use crate::config::Secret;
use crate::domain::ChannelId;

const NAME: &str = "Mastodon";
const TOKEN_KEY: &str = "channels.mastodon.access_token";

pub struct Mastodon {
    client: reqwest::Client,
    instance: String,
    token: Secret,
    visibility: String,
    link_base: Option<String>,
}

impl Mastodon {
    pub fn new(c: &config::Mastodon, link_base: Option<String>) -> Result<Self, BuildError> {
        Ok(Self {
            client: http::client()?,
            instance: c.instance_url.clone(),
            token: super::secret(ChannelId::Mastodon, "access_token", c.access_token.as_ref())?,
            visibility: c.visibility.clone(),
            link_base,
        })
    }

    /// `POST /api/v1/statuses` with the delivery's Idempotency-Key.
    async fn create(
        &self,
        m: &Message<'_>,
        text: &str,
        in_reply_to: Option<&str>,
    ) -> Result<Reply, DeliveryError> {
        let mut body = json!({ "status": text, "visibility": self.visibility });
        if let Some(id) = in_reply_to {
            body["in_reply_to_id"] = json!(id);
        }
        let response = self
            .client
            .post(format!("{}/api/v1/statuses", self.instance))
            .bearer_auth(self.token.expose())
            .header("Idempotency-Key", &m.delivery.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| http::network_error(NAME, &e))?;
        Reply::read(NAME, response).await
    }

    async fn post(&self, m: &Message<'_>) -> Result<Accepted, DeliveryError> {
        let text = post_text(self.link_base.as_deref(), m);
        if let Some(p) = limits::problem(ChannelId::Mastodon, &text) {
            return Err(DeliveryError::permanent(p));
        }
        let thread = m.alert.thread_posts.get(&ChannelId::Mastodon);
        let mut reply = self
            .create(m, &text, thread.map(|t| t.parent.as_str()))
            .await?;
        if let Some(t) = thread
            && reply.status.as_u16() == 404
        {
            // The post replied to was deleted: a post of its own rather
            // than a lost follow-up.
            tracing::warn!(parent = %t.parent, "Mastodon: the post replied to is gone; posting on its own");
            reply = self.create(m, &text, None).await?;
        }
        if !reply.status.is_success() {
            return Err(failure(&reply));
        }
        match reply.json()["id"].as_str() {
            Some(id) => Ok(Accepted {
                provider_id: Some(id.to_owned()),
                delivered: true,
            }),
            None => Err(DeliveryError::transient(format!(
                "{NAME}: {} without a status id",
                reply.status
            ))),
        }
    }
}

fn failure(reply: &Reply) -> DeliveryError {
    let reset = http::reset_header(&reply.headers, "x-ratelimit-reset", Utc::now());
    http::failure(NAME, reply, &http::error_text(reply), TOKEN_KEY, reset)
}

/// For `allerta check`: the account the token belongs to (nothing posted).
pub async fn reachable(c: &config::Mastodon) -> Result<String, String> {
    let token = super::secret(ChannelId::Mastodon, "access_token", c.access_token.as_ref())
        .map_err(|e| e.0)?;
    let client = http::client().map_err(|e| e.0)?;
    let response = client
        .get(format!(
            "{}/api/v1/accounts/verify_credentials",
            c.instance_url
        ))
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
    match json["acct"].as_str().or(json["username"].as_str()) {
        Some(acct) => Ok(format!("@{acct}")),
        None => Err(format!(
            "{NAME}: verify_credentials answered without an account"
        )),
    }
}

impl Channel for Mastodon {
    fn id(&self) -> ChannelId {
        ChannelId::Mastodon
    }

    fn describe(&self) -> String {
        format!("Mastodon at {}", self.instance)
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
