//! The two report receivers: Kannel's `dlr-url` callback and the HTTP
//! transport's configurable status callback. Both authenticate first,
//! translate the report into the ledger's vocabulary, and let
//! `Ledger::apply_report` decide (idempotently) what changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::json;

use super::App;
use crate::channel::sms::http_config::field;
use crate::domain::ChannelId;
use crate::ledger::{Effect, Lookup, Report, ReportState, now_ms};

type Reply = (StatusCode, String);

/// The shared token from the query, `Authorization: Bearer` or `X-Allerta-Token`.
fn authorized(app: &App, params: &BTreeMap<String, String>, headers: &HeaderMap) -> bool {
    let given = params
        .get("token")
        .map(String::as_str)
        .or_else(|| bearer(headers))
        .or_else(|| headers.get("x-allerta-token").and_then(|v| v.to_str().ok()));
    given.is_some_and(|g| same_token(app.token.expose(), g))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// `Authorization: Bearer <the [serve] token>` (for `/metrics`).
pub fn bearer_matches(app: &App, headers: &HeaderMap) -> bool {
    bearer(headers).is_some_and(|g| same_token(app.token.expose(), g))
}

/// Constant-time comparison. An empty expected token never matches: the
/// config refuses one, and this keeps `?token=` from ever passing.
fn same_token(expected: &str, given: &str) -> bool {
    !expected.is_empty()
        && given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The report's parameters without the secrets, kept as evidence.
fn evidence(params: &BTreeMap<String, String>) -> serde_json::Value {
    json!(
        params
            .iter()
            .filter(|(k, _)| k.as_str() != "token" && k.as_str() != "k")
            .collect::<BTreeMap<_, _>>()
    )
}

async fn apply(app: &Arc<App>, lookup: OwnedLookup, report: Report) -> Reply {
    let source = report.source;
    let by_provider = matches!(lookup, OwnedLookup::Provider(_));
    let lookup = Arc::new(lookup);
    let report = Arc::new(report);
    let mut tries = 0;
    let result = loop {
        let (lookup, report) = (lookup.clone(), report.clone());
        let result = app
            .ledger(move |l| {
                let lookup = match lookup.as_ref() {
                    OwnedLookup::Delivery { id, token } => Lookup::Delivery { id: *id, token },
                    OwnedLookup::Provider(p) => Lookup::Provider(p),
                };
                l.apply_report(lookup, &report, now_ms())
            })
            .await;
        // A gateway may report before `send` has committed the provider id
        // it just got (outcomes are written in batches every 100 ms): look
        // again for a moment before calling the id unknown.
        if by_provider && tries < 10 && matches!(result, Ok(Effect::Unknown)) {
            tries += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        break result;
    };
    match result {
        Ok(effect) => {
            app.metrics.report(source, effect.as_str());
            if let Effect::Delivered { latency_s: Some(s) }
            | Effect::Failed { latency_s: Some(s) } = effect
            {
                app.metrics.latency(s);
            }
            match effect {
                Effect::Unknown => (StatusCode::NOT_FOUND, "unknown delivery\n".into()),
                other => (StatusCode::OK, format!("{}\n", other.as_str())),
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record a delivery report");
            app.metrics.report(source, "error");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot record the report\n".into(),
            )
        }
    }
}

enum OwnedLookup {
    Delivery { id: i64, token: String },
    Provider(String),
}

fn our_delivery(params: &BTreeMap<String, String>) -> Option<OwnedLookup> {
    let id = params.get("id")?.parse().ok()?;
    let token = params.get("k")?.clone();
    Some(OwnedLookup::Delivery { id, token })
}

fn bad(app: &App, source: &'static str, why: &str) -> Reply {
    app.metrics.report(source, "malformed");
    (StatusCode::BAD_REQUEST, format!("{why}\n"))
}

/// Kannel's callback: `?id&k&token&part&parts&status=%d&answer=%A&ts=%T`.
pub async fn kannel(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Reply {
    if !authorized(&app, &params, &headers) {
        app.metrics.report("kannel", "unauthorized");
        return (StatusCode::UNAUTHORIZED, "unauthorized\n".into());
    }
    let Some(lookup) = our_delivery(&params) else {
        return bad(&app, "kannel", "id and k are required");
    };
    let Some(status) = params.get("status").and_then(|s| s.parse::<u32>().ok()) else {
        return bad(&app, "kannel", "status is required");
    };
    let number = |k: &str| params.get(k).and_then(|v| v.parse::<u32>().ok());
    let part = match (number("part"), number("parts")) {
        (Some(p), Some(n)) if p >= 1 && p <= n => Some((p, n)),
        _ => None,
    };
    // 1 delivered; 2 undeliverable; 16 rejected by the SMSC; 4, 8 on the way.
    let (state, what) = if status & 1 != 0 {
        (ReportState::Delivered, "delivered")
    } else if status & 16 != 0 {
        (ReportState::Failed, "rejected by the SMSC")
    } else if status & 2 != 0 {
        (ReportState::Failed, "undeliverable")
    } else {
        (ReportState::Progress, "accepted by the SMSC")
    };
    let answer = params.get("answer").filter(|a| !a.is_empty());
    let report = Report {
        channel: ChannelId::Sms,
        state,
        part,
        provider_id: None,
        reason: Some(match answer {
            Some(a) => format!("{what} (Kannel {status}: {a})"),
            None => format!("{what} (Kannel {status})"),
        }),
        source: "kannel",
        raw: evidence(&params),
    };
    apply(&app, lookup, report).await
}

/// The HTTP transport's status callback: query, form or JSON, mapped with
/// `[channels.sms.http.callback]`.
pub async fn http(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(mut params): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Reply {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut json_body = None;
    if content_type.starts_with("application/x-www-form-urlencoded") {
        if let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
            params.extend(form);
        }
    } else if content_type.contains("json") {
        json_body = serde_json::from_slice::<serde_json::Value>(&body).ok();
    }
    if !authorized(&app, &params, &headers) {
        app.metrics.report("http", "unauthorized");
        return (StatusCode::UNAUTHORIZED, "unauthorized\n".into());
    }
    let Some(rules) = app.callback.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "no [channels.sms.http.callback] configured\n".into(),
        );
    };
    let Some(status) = field(&rules.status_field, &params, json_body.as_ref()) else {
        return bad(&app, "http", &format!("{} is required", rules.status_field));
    };
    let provider_id = rules
        .id_field
        .as_deref()
        .and_then(|f| field(f, &params, json_body.as_ref()));
    let lookup = match (our_delivery(&params), &provider_id) {
        (Some(l), _) => l,
        (None, Some(p)) => OwnedLookup::Provider(p.clone()),
        (None, None) => return bad(&app, "http", "no delivery id and no provider id"),
    };
    let state = if rules
        .delivered
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&status))
    {
        ReportState::Delivered
    } else if rules.failed.iter().any(|s| s.eq_ignore_ascii_case(&status)) {
        ReportState::Failed
    } else {
        ReportState::Progress
    };
    let error = rules
        .error_field
        .as_deref()
        .and_then(|f| field(f, &params, json_body.as_ref()))
        .filter(|e| !e.is_empty());
    let mut raw = evidence(&params);
    if let Some(j) = json_body {
        raw["json"] = j;
    }
    let report = Report {
        channel: ChannelId::Sms,
        state,
        part: None,
        provider_id,
        reason: Some(match error {
            Some(e) => format!("{status} (error {e})"),
            None => status,
        }),
        source: "http",
        raw,
    };
    apply(&app, lookup, report).await
}
