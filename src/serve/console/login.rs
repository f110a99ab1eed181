//! `/console/login` and `/console/logout`. The password is checked on the
//! blocking pool (argon2 takes tens of milliseconds on purpose); a blocked
//! name or address gets 429 before any check.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};

use super::session::{SessionData, Sessions};
use super::{Console, forbidden, password};

/// The login form; creates an anonymous session for its CSRF token.
pub async fn form(State(c): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Some(s) = c.sessions.get(&headers) {
        if s.user.is_some() {
            return Redirect::to("/console/").into_response();
        }
        return login_page(&c, &s, StatusCode::OK, None, None);
    }
    let s = c.sessions.create(None);
    let mut response = login_page(&c, &s, StatusCode::OK, None, None);
    set_cookie(&mut response, &c.sessions.cookie(&s, c.secure_cookies));
    response
}

pub async fn submit(
    State(c): State<Arc<Console>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(anon) = c.sessions.get(&headers) else {
        return forbidden();
    };
    if !super::session::csrf_matches(&anon, &form) {
        return forbidden();
    }
    let name = form
        .get("user")
        .map(|u| u.trim().to_owned())
        .unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let address = peer
        .map(|Extension(ConnectInfo(a))| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let keys = [format!("user:{name}"), format!("addr:{address}")];
    if c.limiter.blocked(&keys) {
        tracing::warn!(user = %name, %address, "console login refused: too many failures");
        return login_page(
            &c,
            &anon,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed logins for this name or address: try again in 15 minutes."),
            Some(&name),
        );
    }
    let hash = c
        .console
        .users
        .get(&name)
        .cloned()
        .unwrap_or_else(|| c.dummy_hash.clone());
    let known = c.console.users.contains_key(&name);
    let ok = tokio::task::spawn_blocking(move || password::verify(&password, &hash))
        .await
        .unwrap_or(false)
        && known;
    if !ok {
        c.limiter.fail(&keys);
        tracing::warn!(user = %name, %address, "console login failed");
        return login_page(
            &c,
            &anon,
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name or password."),
            Some(&name),
        );
    }
    tracing::info!(user = %name, %address, "console login");
    c.sessions.remove(&anon.id);
    let s = c.sessions.create(Some(name));
    let mut response = Redirect::to("/console/").into_response();
    set_cookie(&mut response, &c.sessions.cookie(&s, c.secure_cookies));
    response
}

pub async fn logout(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let s = match c.user_posting(&headers, &form) {
        Ok(s) => s,
        Err(d) => return d.into_response(),
    };
    c.sessions.remove(&s.id);
    let mut response = Redirect::to("/console/login").into_response();
    set_cookie(&mut response, &Sessions::clear_cookie(c.secure_cookies));
    response
}

fn login_page(
    c: &Console,
    s: &SessionData,
    status: StatusCode,
    error: Option<&str>,
    name: Option<&str>,
) -> Response {
    let mut response = c.render(
        "login.html",
        s,
        minijinja::context! { error => error, name => name.unwrap_or("") },
    );
    *response.status_mut() = status;
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}
