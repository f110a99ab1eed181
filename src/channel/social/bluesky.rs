//! Bluesky, through the account's PDS (AT Protocol XRPC):
//! `com.atproto.server.createSession` with the app password, then
//! `com.atproto.repo.createRecord` of an `app.bsky.feed.post` whose record
//! key is a TID computed from the delivery ([`record_key`]): every attempt
//! writes the same key. Before writing, `com.atproto.repo.getRecord` looks
//! the key up: a post created by an attempt whose answer was lost is found
//! and recorded, never posted twice (a second write of the key answers 500
//! on today's servers). Links become `app.bsky.richtext.facet#link` facets
//! (UTF-8 byte offsets); a follow-up replies with `reply.root` (the
//! thread's first post) and `reply.parent` (its latest), each a uri + cid.
//! The provider id is `<at-uri> <cid>`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::http::{self, Reply};
use super::{config, limits, post_text};
use crate::channel::{Accepted, BuildError, Channel, DeliveryError, Message, SendFuture};
use crate::config::Secret;
use crate::domain::ChannelId;

const NAME: &str = "Bluesky";
const KEY: &str = "channels.bluesky.app_password";
const COLLECTION: &str = "app.bsky.feed.post";

/// The base32-sortable alphabet of TIDs.
const BASE32_SORT: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// A TID (AT Protocol timestamp identifier): 64 bits, top bit 0, then 53
/// bits of microseconds since the epoch and a 10-bit clock id, as 13
/// base32-sortable characters.
pub fn tid(micros: u64, clock_id: u16) -> String {
    let value = ((micros & ((1 << 53) - 1)) << 10) | u64::from(clock_id & 0x3ff);
    (0..13)
        .rev()
        .map(|i| BASE32_SORT[((value >> (i * 5)) & 0x1f) as usize] as char)
        .collect()
}

/// The record key of a delivery's post: the alert's creation time in
/// microseconds and the delivery id as the clock id. The same delivery
/// always gets the same key; two alerts never share a creation microsecond
/// in one ledger.
pub fn record_key(alert_created_at: &str, delivery_id: i64) -> Result<String, String> {
    let created = DateTime::parse_from_rfc3339(alert_created_at)
        .map_err(|e| format!("alert creation time `{alert_created_at}`: {e}"))?;
    let micros = u64::try_from(created.timestamp_micros())
        .map_err(|_| format!("alert creation time `{alert_created_at}` is before 1970"))?;
    Ok(tid(micros, (delivery_id & 0x3ff) as u16))
}

#[derive(Clone)]
struct Session {
    access_jwt: Secret,
    did: String,
}

pub struct Bluesky {
    client: reqwest::Client,
    service: String,
    identifier: String,
    password: Secret,
    session: Mutex<Option<Session>>,
    link_base: Option<String>,
}

/// An existing post, as reply references need it.
fn strong_ref(provider_id: &str) -> Value {
    let (uri, cid) = provider_id.split_once(' ').unwrap_or((provider_id, ""));
    json!({ "uri": uri, "cid": cid })
}

/// Link facets for every URL of `text`, with UTF-8 byte offsets.
pub fn link_facets(text: &str) -> Vec<Value> {
    limits::urls(text)
        .into_iter()
        .map(|(start, end)| {
            json!({
                "index": { "byteStart": start, "byteEnd": end },
                "features": [{ "$type": "app.bsky.richtext.facet#link", "uri": &text[start..end] }],
            })
        })
        .collect()
}

impl Bluesky {
    pub fn new(c: &config::Bluesky, link_base: Option<String>) -> Result<Self, BuildError> {
        Ok(Self {
            client: http::client()?,
            service: c.service_url.clone(),
            identifier: c.identifier.clone(),
            password: super::secret(ChannelId::Bluesky, "app_password", c.app_password.as_ref())?,
            session: Mutex::new(None),
            link_base,
        })
    }

    fn xrpc(&self, method: &str) -> String {
        format!("{}/xrpc/{method}", self.service)
    }

    async fn session(&self) -> Result<Session, DeliveryError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let s = create_session(
            &self.client,
            &self.service,
            &self.identifier,
            &self.password,
        )
        .await?;
        *guard = Some(s.clone());
        Ok(s)
    }

    async fn forget_session(&self) {
        *self.session.lock().await = None;
    }

    /// The post under `rkey`, if it exists: (uri, cid).
    async fn existing(&self, s: &Session, rkey: &str) -> Result<Option<String>, DeliveryError> {
        let response = self
            .client
            .get(self.xrpc("com.atproto.repo.getRecord"))
            .query(&[
                ("repo", s.did.as_str()),
                ("collection", COLLECTION),
                ("rkey", rkey),
            ])
            .bearer_auth(s.access_jwt.expose())
            .send()
            .await
            .map_err(|e| http::network_error(NAME, &e))?;
        let reply = Reply::read(NAME, response).await?;
        let json = reply.json();
        if reply.status.is_success() {
            return match (json["uri"].as_str(), json["cid"].as_str()) {
                (Some(uri), Some(cid)) => Ok(Some(format!("{uri} {cid}"))),
                _ => Err(DeliveryError::transient(format!(
                    "{NAME}: getRecord answered without uri and cid"
                ))),
            };
        }
        if reply.status.as_u16() == 400 && json["error"] == "RecordNotFound" {
            return Ok(None);
        }
        Err(self.failure(&reply).await)
    }

    async fn failure(&self, reply: &Reply) -> DeliveryError {
        if reply.status.as_u16() == 400 && reply.json()["error"] == "ExpiredToken" {
            self.forget_session().await;
            return DeliveryError::transient(format!("{NAME}: session expired, signing in again"));
        }
        if reply.status.as_u16() == 401 {
            self.forget_session().await;
        }
        failure(reply)
    }

    async fn post(&self, m: &Message<'_>) -> Result<Accepted, DeliveryError> {
        let text = post_text(self.link_base.as_deref(), m);
        if let Some(p) = limits::problem(ChannelId::Bluesky, &text) {
            return Err(DeliveryError::permanent(p));
        }
        let rkey =
            record_key(&m.alert.created_at, m.delivery.id).map_err(DeliveryError::permanent)?;
        let session = self.session().await?;
        let delivered = |provider_id: String| Accepted {
            provider_id: Some(provider_id),
            delivered: true,
        };
        if let Some(found) = self.existing(&session, &rkey).await? {
            tracing::info!(delivery = m.delivery.id, %rkey, "Bluesky post already made by an earlier attempt");
            return Ok(delivered(found));
        }
        let mut record = json!({
            "$type": COLLECTION,
            "text": text,
            "createdAt": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "langs": [m.delivery.language],
        });
        let facets = link_facets(&text);
        if !facets.is_empty() {
            record["facets"] = json!(facets);
        }
        if let Some(thread) = m.alert.thread_posts.get(&ChannelId::Bluesky) {
            record["reply"] =
                json!({ "root": strong_ref(&thread.root), "parent": strong_ref(&thread.parent) });
        }
        let response = self
            .client
            .post(self.xrpc("com.atproto.repo.createRecord"))
            .bearer_auth(session.access_jwt.expose())
            .json(&json!({ "repo": session.did, "collection": COLLECTION, "rkey": rkey, "record": record }))
            .send()
            .await
            .map_err(|e| http::network_error(NAME, &e))?;
        let reply = Reply::read(NAME, response).await?;
        if !reply.status.is_success() {
            return Err(self.failure(&reply).await);
        }
        let json = reply.json();
        match (json["uri"].as_str(), json["cid"].as_str()) {
            (Some(uri), Some(cid)) => Ok(delivered(format!("{uri} {cid}"))),
            _ => Err(DeliveryError::transient(format!(
                "{NAME}: createRecord answered without uri and cid"
            ))),
        }
    }
}

/// 400 `InvalidRequest` is a record the PDS refused (too long, bad facet):
/// permanent, like a Mastodon 422.
fn failure(reply: &Reply) -> DeliveryError {
    let reset = http::reset_header(&reply.headers, "ratelimit-reset", Utc::now());
    let detail = http::error_text(reply);
    if reply.status.as_u16() == 400 && reply.json()["error"] == "AuthenticationRequired" {
        return DeliveryError::permanent(format!(
            "{NAME} refused the app password ({detail}): check channels.bluesky.identifier and {KEY}"
        ));
    }
    http::failure(NAME, reply, &detail, KEY, reset)
}

async fn create_session(
    client: &reqwest::Client,
    service: &str,
    identifier: &str,
    password: &Secret,
) -> Result<Session, DeliveryError> {
    let response = client
        .post(format!("{service}/xrpc/com.atproto.server.createSession"))
        .json(&json!({ "identifier": identifier, "password": password.expose() }))
        .send()
        .await
        .map_err(|e| http::network_error(NAME, &e))?;
    let reply = Reply::read(NAME, response).await?;
    if !reply.status.is_success() {
        return Err(failure(&reply));
    }
    let json = reply.json();
    match (json["accessJwt"].as_str(), json["did"].as_str()) {
        (Some(jwt), Some(did)) => Ok(Session {
            access_jwt: Secret::new(jwt.to_owned()),
            did: did.to_owned(),
        }),
        _ => Err(DeliveryError::transient(format!(
            "{NAME}: createSession answered without accessJwt and did"
        ))),
    }
}

/// For `allerta check`: signs in (nothing posted); returns the account's DID.
pub async fn reachable(c: &config::Bluesky) -> Result<String, String> {
    let password = super::secret(ChannelId::Bluesky, "app_password", c.app_password.as_ref())
        .map_err(|e| e.0)?;
    let client = http::client().map_err(|e| e.0)?;
    let s = create_session(&client, &c.service_url, &c.identifier, &password)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("@{} ({})", c.identifier, s.did))
}

impl Channel for Bluesky {
    fn id(&self) -> ChannelId {
        ChannelId::Bluesky
    }

    fn describe(&self) -> String {
        format!("Bluesky at {} as @{}", self.service, self.identifier)
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

    #[test]
    fn tids_follow_the_spec() {
        // The spec's zero TID, and atcute's example (1724171495793000, 512).
        assert_eq!(tid(0, 0), "2222222222222");
        assert_eq!(tid(1_724_171_495_793_000, 512), "3l25zusnsfck2");
        let key = record_key("2026-12-01T22:55:03.123456789+00:00", 42).expect("key");
        assert_eq!(key.len(), 13);
        assert!(key.bytes().all(|b| BASE32_SORT.contains(&b)));
        // The first character keeps the top bit clear.
        assert!(b"234567abcdefghij".contains(&key.as_bytes()[0]), "{key}");
        assert_eq!(
            record_key("2026-12-01T22:55:03.123456789+00:00", 42),
            Ok(key.clone()),
            "the same delivery always gets the same key"
        );
        assert_ne!(
            record_key("2026-12-01T22:55:03.123456789+00:00", 43),
            Ok(key)
        );
    }

    #[test]
    fn facets_use_utf8_byte_offsets() {
        let text = "Città allagata: https://x.it/?alert=1";
        let facets = link_facets(text);
        assert_eq!(facets.len(), 1);
        let start = facets[0]["index"]["byteStart"].as_u64().expect("start") as usize;
        let end = facets[0]["index"]["byteEnd"].as_u64().expect("end") as usize;
        // "Città" is 5 characters but 6 bytes.
        assert_eq!(start, "Città allagata: ".len());
        assert_eq!(start, 17);
        assert_eq!(&text.as_bytes()[start..end], b"https://x.it/?alert=1");
    }
}
