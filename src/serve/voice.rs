//! The voice routes (SPEC §14) under `/voice/`: the call's instructions
//! (TwiML), the status callback and the keypress callback. Each URL carries
//! its delivery's id and key (`?d=…&k=…`, written by the voice channel);
//! with `signature = "twilio"` every request must also carry a valid
//! `X-Twilio-Signature` for the public URL it was sent to (`callback_url` +
//! the route + the query). Anything else gets 403 and changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::App;
use crate::channel::voice::config::{Signature, Voice};
use crate::channel::voice::{signature, twiml};
use crate::config::Secret;
use crate::domain::ChannelId;
use crate::ledger::{Ack, CallEffect, CallPolicy, now_ms};
use crate::template::Rendered;

/// What the voice routes need from `[channels.voice]`.
pub struct VoiceRoutes {
    /// The public base URL the provider calls (`callback_url`).
    base: String,
    signature: Signature,
    auth_token: Option<Secret>,
    policy: CallPolicy,
}

impl VoiceRoutes {
    /// `None` unless the voice channel is on the `http` transport.
    pub fn from_config(voice: &Voice) -> Result<Option<Self>, String> {
        if voice.transport != crate::channel::voice::config::VoiceTransport::Http {
            return Ok(None);
        }
        let auth_token = voice
            .auth_token
            .as_ref()
            .map(crate::config::SecretRef::resolve)
            .transpose()?;
        Ok(Some(Self {
            base: voice.callback_url.clone().unwrap_or_default(),
            signature: voice.signature,
            auth_token,
            policy: CallPolicy {
                attempts: voice.attempts,
                retry_after_ms: voice.retry_after.as_millis() as i64,
            },
        }))
    }
}

/// One request to a voice route, as received.
struct Request {
    delivery: i64,
    key: String,
    params: BTreeMap<String, String>,
}

fn forbidden(app: &App, route: &'static str) -> Response {
    app.metrics.report("voice", "forbidden");
    tracing::warn!(route, "voice: request refused (bad key or signature)");
    (StatusCode::FORBIDDEN, "forbidden\n").into_response()
}

fn xml(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Why a request was not admitted.
enum Refused {
    NoVoice,
    Forbidden,
}

impl Refused {
    fn reply(self, app: &App, route: &'static str) -> Response {
        match self {
            Self::NoVoice => (
                StatusCode::NOT_FOUND,
                "no voice channel on the http transport\n",
            )
                .into_response(),
            Self::Forbidden => forbidden(app, route),
        }
    }
}

/// Checks the signature and reads the delivery id and key, or refuses.
fn admit(
    app: &App,
    route: &'static str,
    method: &Method,
    headers: &HeaderMap,
    query: Option<String>,
    body: &Bytes,
) -> Result<Request, Refused> {
    let Some(voice) = app.voice.as_ref() else {
        return Err(Refused::NoVoice);
    };
    let query = query.unwrap_or_default();
    let form: Vec<(String, String)> = if method == Method::POST {
        serde_urlencoded::from_bytes(body).unwrap_or_default()
    } else {
        Vec::new()
    };
    if voice.signature == Signature::Twilio {
        let url = if query.is_empty() {
            format!("{}/{route}", voice.base)
        } else {
            format!("{}/{route}?{query}", voice.base)
        };
        let given = headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let token = voice.auth_token.as_ref().map(Secret::expose).unwrap_or("");
        if !signature::verify(token, &url, &form, given) {
            return Err(Refused::Forbidden);
        }
    }
    let ours: BTreeMap<String, String> = serde_urlencoded::from_str(&query).unwrap_or_default();
    let (Some(delivery), Some(key)) = (
        ours.get("d").and_then(|d| d.parse::<i64>().ok()),
        ours.get("k").cloned(),
    ) else {
        return Err(Refused::Forbidden);
    };
    Ok(Request {
        delivery,
        key,
        params: form.into_iter().collect(),
    })
}

fn unavailable(e: &str) -> Response {
    tracing::error!(error = %e, "voice: the ledger cannot be used");
    (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n").into_response()
}

/// The delivery a request names, if its key matches; else the refusal.
async fn target_of(
    app: &Arc<App>,
    route: &'static str,
    req: &Request,
) -> Result<crate::ledger::CallTarget, Response> {
    let (id, key) = (req.delivery, req.key.clone());
    match app.ledger(move |l| l.call_target(id, &key)).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(forbidden(app, route)),
        Err(e) => Err(unavailable(&e)),
    }
}

/// `/voice/twiml`: what the call says, in the delivery's language.
pub async fn instructions(
    State(app): State<Arc<App>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let req = match admit(&app, "twiml", &method, &headers, query, &body) {
        Ok(r) => r,
        Err(refused) => return refused.reply(&app, "twiml"),
    };
    let target = match target_of(&app, "twiml", &req).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    let Ok(rendered) = serde_json::from_str::<Rendered>(&target.rendered) else {
        return xml(twiml::hangup());
    };
    let has_own = rendered
        .channels
        .get(&ChannelId::Voice)
        .is_some_and(|by| by.contains_key(&target.language));
    let language = if has_own {
        target.language.clone()
    } else {
        rendered.default_language.clone()
    };
    let Some(text) = rendered.text(ChannelId::Voice, &target.language) else {
        return xml(twiml::hangup());
    };
    let base = app.voice.as_ref().map(|v| v.base.as_str()).unwrap_or("");
    let gather = crate::channel::voice::route_url(base, "gather", req.delivery, &req.key);
    app.metrics.report("voice", "twiml");
    xml(twiml::message(&text.text, &language, &gather))
}

/// `/voice/status`: the call's status callback (`CallSid`, `CallStatus`…).
pub async fn status(
    State(app): State<Arc<App>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let req = match admit(&app, "status", &method, &headers, query, &body) {
        Ok(r) => r,
        Err(refused) => return refused.reply(&app, "status"),
    };
    let (Some(sid), Some(call_status)) = (
        req.params.get("CallSid").cloned(),
        req.params.get("CallStatus").cloned(),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "CallSid and CallStatus are required\n",
        )
            .into_response();
    };
    let policy = app.voice.as_ref().map(|v| v.policy).unwrap_or(CallPolicy {
        attempts: 1,
        retry_after_ms: 0,
    });
    let detail = json!(req.params);
    let (id, key) = (req.delivery, req.key);
    let result = app
        .ledger(move |l| {
            l.apply_call_status(id, &key, &sid, &call_status, &detail, policy, now_ms())
        })
        .await;
    match result {
        Ok(CallEffect::Unknown) => forbidden(&app, "status"),
        Ok(effect) => {
            app.metrics.report("voice", effect.as_str());
            (StatusCode::OK, format!("{}\n", effect.as_str())).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

/// `/voice/gather`: the key pressed after the prompt; `1` acknowledges.
pub async fn keypress(
    State(app): State<Arc<App>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let req = match admit(&app, "gather", &method, &headers, query, &body) {
        Ok(r) => r,
        Err(refused) => return refused.reply(&app, "gather"),
    };
    let digits = req.params.get("Digits").cloned().unwrap_or_default();
    let target = match target_of(&app, "gather", &req).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    let confirmed = digits.trim() == "1";
    if confirmed {
        let (id, key) = (req.delivery, req.key);
        match app
            .ledger(move |l| l.acknowledge_call(id, &key, "1", now_ms()))
            .await
        {
            Ok(Ack::Invalid) => return forbidden(&app, "gather"),
            Ok(_) => app.metrics.report("voice", "acknowledged"),
            Err(e) => return unavailable(&e),
        }
    }
    xml(twiml::after_keypress(&target.language, confirmed))
}
