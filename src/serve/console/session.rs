//! Console sessions: random 256-bit ids in an HttpOnly, SameSite=Strict
//! cookie (`Secure` unless serve listens on loopback), kept server-side in
//! memory with an expiry. A restart of `serve` logs everyone out — an
//! acceptable price for keeping no session secret on disk.
//!
//! A visitor who has not logged in yet gets an anonymous session too, so
//! the login form carries a CSRF token like every other POST; logging in
//! replaces it with a new id (no session fixation).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};

pub const COOKIE: &str = "allerta_console";

/// How long a login form stays usable.
const ANONYMOUS_LIFETIME: Duration = Duration::from_secs(3600);
/// Bound on the store: anonymous sessions beyond it evict the oldest.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct SessionData {
    pub id: String,
    /// `None` until logged in.
    pub user: Option<String>,
    pub csrf: String,
    expires: Instant,
}

pub struct Sessions {
    lifetime: Duration,
    map: Mutex<HashMap<String, SessionData>>,
}

/// 256 random bits, hex.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The live session named by the request's cookie.
    pub fn get(&self, headers: &HeaderMap) -> Option<SessionData> {
        self.get_at(headers, Instant::now())
    }

    fn get_at(&self, headers: &HeaderMap, now: Instant) -> Option<SessionData> {
        let id = cookie_value(headers, COOKIE)?;
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// A new session (anonymous when `user` is `None`).
    pub fn create(&self, user: Option<String>) -> SessionData {
        let lifetime = if user.is_some() {
            self.lifetime
        } else {
            ANONYMOUS_LIFETIME
        };
        let s = SessionData {
            id: random_token(),
            user,
            csrf: random_token(),
            expires: Instant::now() + lifetime,
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, v| v.expires > now);
        if map.len() >= MAX_SESSIONS {
            let oldest = map
                .values()
                .filter(|v| v.user.is_none())
                .min_by_key(|v| v.expires)
                .map(|v| v.id.clone());
            if let Some(id) = oldest {
                map.remove(&id);
            }
        }
        map.insert(s.id.clone(), s.clone());
        s
    }

    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// The `Set-Cookie` value for `s`.
    pub fn cookie(&self, s: &SessionData, secure: bool) -> String {
        let max_age = if s.user.is_some() {
            self.lifetime.as_secs()
        } else {
            ANONYMOUS_LIFETIME.as_secs()
        };
        format!(
            "{COOKIE}={}; Path=/console; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
            s.id,
            if secure { "; Secure" } else { "" }
        )
    }

    /// A `Set-Cookie` value that ends the session in the browser.
    pub fn clear_cookie(secure: bool) -> String {
        format!(
            "{COOKIE}=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict{}",
            if secure { "; Secure" } else { "" }
        )
    }
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the form's `csrf` field is the session's token (compared in
/// constant time).
pub fn csrf_matches(s: &SessionData, form: &HashMap<String, String>) -> bool {
    let Some(given) = form.get("csrf") else {
        return false;
    };
    let (a, b) = (given.as_bytes(), s.csrf.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_session_is_found_by_its_cookie_until_removed() {
        let store = Sessions::new(Duration::from_secs(60));
        let s = store.create(Some("mrossi".into()));
        assert_eq!(s.id.len(), 64);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={}", s.id)).unwrap(),
        );
        assert_eq!(store.get(&h).unwrap().user.as_deref(), Some("mrossi"));
        let mut form = HashMap::new();
        assert!(!csrf_matches(&s, &form));
        form.insert("csrf".to_owned(), s.csrf.clone());
        assert!(csrf_matches(&s, &form));
        store.remove(&s.id);
        assert!(store.get(&h).is_none());
    }

    #[test]
    fn a_session_ends_after_its_lifetime() {
        let store = Sessions::new(Duration::from_secs(60));
        let s = store.create(Some("mrossi".into()));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}={}", s.id)).unwrap(),
        );
        let now = Instant::now();
        assert!(store.get_at(&h, now + Duration::from_secs(59)).is_some());
        assert!(store.get_at(&h, now + Duration::from_secs(61)).is_none());
        assert!(store.get(&h).is_none(), "and it is gone from the store");
    }

    #[test]
    fn cookie_flags() {
        let store = Sessions::new(Duration::from_secs(60));
        let s = store.create(None);
        let c = store.cookie(&s, false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(!c.contains("Secure"));
        assert!(store.cookie(&s, true).ends_with("; Secure"));
    }
}
