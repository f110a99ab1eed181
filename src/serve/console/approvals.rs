//! `/console/approvals`: alerts waiting for the second person (SPEC §11),
//! with approve and reject. Both go through `alert::approval` with the
//! logged-in console user as the identity (console users are OS users), so
//! the rules are the CLI's: only an approver, never the creator, may
//! approve; the creator may withdraw (reject) their own alert.
//!
//! An approved alert is left `sending` for the `allerta resume` timer
//! (see `approval::approve_for_timer` for why serve does not send).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::{Console, local_time};
use crate::alert::{Consent, Notify, Session};
use crate::error::Error;

pub async fn list(State(c): State<Arc<Console>>, headers: HeaderMap) -> Response {
    let user = match c.user(&headers) {
        Ok(u) => u,
        Err(d) => return d.into_response(),
    };
    let name = user.user.clone().unwrap_or_default();
    let ctx = c
        .read(move |l, config| {
            let mut pending = Vec::new();
            for id in l.awaiting_approval()? {
                let row = l.alert(Some(&id))?;
                let counts = l.counts(&id)?;
                let outside = l.outside_drill(&id, &[crate::ledger::DeliveryState::Pending])?;
                pending.push(context! {
                    created => local_time(config, &row.created_at),
                    deadline => row.approval_deadline.as_deref().map(|d| local_time(config, d)),
                    audience => crate::alert::send::stored_audience(&row.audience).describe(),
                    mine => row.creator == name,
                    counts => super::ser(&counts),
                    outside,
                    alert => super::ser(&row),
                });
            }
            let approvers = config
                .approval
                .as_ref()
                .map(|a| a.approvers.clone())
                .unwrap_or_default();
            Ok(context! { pending, approvers, configured => config.approval.is_some() })
        })
        .await;
    match ctx {
        Ok(ctx) => c.render("approvals.html", &user, ctx),
        Err(r) => r,
    }
}

pub async fn approve(
    state: State<Arc<Console>>,
    id: Path<String>,
    headers: HeaderMap,
    form: Form<HashMap<String, String>>,
) -> Response {
    decide(state, id, headers, form, true).await
}

pub async fn reject(
    state: State<Arc<Console>>,
    id: Path<String>,
    headers: HeaderMap,
    form: Form<HashMap<String, String>>,
) -> Response {
    decide(state, id, headers, form, false).await
}

/// Notes go to serve's log.
struct Log;

impl Notify for Log {
    fn note(&self, text: &str) {
        tracing::info!("{text}");
    }
    fn warn(&self, text: &str) {
        tracing::warn!("{text}");
    }
}

async fn decide(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
    approved: bool,
) -> Response {
    let user = match c.user_posting(&headers, &form) {
        Ok(u) => u,
        Err(d) => return d.into_response(),
    };
    let name = user.user.clone().unwrap_or_default();
    let console = c.clone();
    let alert = id.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let actor = crate::Actor::current(Some(&name));
        let session = Session {
            config: &console.config,
            actor: &actor,
            identity: name.clone(),
            // The approvals page showed what the alert is and whom it
            // reaches; pressing its button is the confirmation.
            consent: Consent::Given,
            notify: &Log,
            progress: Arc::new(crate::dispatch::NoProgress),
            stop: crate::alert::Stop::default(),
        };
        if approved {
            crate::alert::approval::approve_for_timer(&session, &alert)
        } else {
            crate::alert::approval::reject(&session, &alert)
        }
    })
    .await
    .unwrap_or_else(|e| Err(Error::Runtime(format!("approval task failed: {e}"))));
    let (status, title, text) = match outcome {
        Ok(()) if approved => (
            StatusCode::OK,
            "Approved",
            format!(
                "Alert {id} is approved. The allerta-resume timer sends it within a minute \
                 (or run `allerta resume {id}` on the server now)."
            ),
        ),
        Ok(()) => (
            StatusCode::OK,
            "Rejected",
            format!("Alert {id} is rejected: nothing was sent."),
        ),
        Err(Error::Input(m) | Error::Refused(m)) => (StatusCode::FORBIDDEN, "Refused", m),
        Err(Error::Ledger(crate::ledger::LedgerError::UnknownAlert(a))) => (
            StatusCode::NOT_FOUND,
            "Unknown alert",
            format!("unknown alert `{a}`"),
        ),
        Err(e) => {
            tracing::error!(error = %e, "console approval");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "the decision could not be recorded; see the serve log".to_owned(),
            )
        }
    };
    let mut response = c.render(
        "message.html",
        &user,
        context! { title, text, back => "/console/approvals" },
    );
    *response.status_mut() = status;
    response.into_response()
}
