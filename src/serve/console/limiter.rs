//! Failed console logins (SPEC §17): after 5 failures for one user name or
//! from one address within 15 minutes, that name or address gets 429 for
//! 15 minutes, whatever the password. In memory, like the sessions.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_FAILURES: usize = 5;
const WINDOW: Duration = Duration::from_secs(15 * 60);
const BLOCK: Duration = Duration::from_secs(15 * 60);
/// Bound on the keys kept (addresses are chosen by the client).
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
struct Entry {
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

#[derive(Default)]
pub struct Limiter {
    map: Mutex<HashMap<String, Entry>>,
}

impl Limiter {
    /// Whether any of `keys` is blocked now.
    pub fn blocked(&self, keys: &[String]) -> bool {
        self.blocked_at(keys, Instant::now())
    }

    /// Records one failure against each key.
    pub fn fail(&self, keys: &[String]) {
        self.fail_at(keys, Instant::now());
    }

    fn blocked_at(&self, keys: &[String], now: Instant) -> bool {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().any(|k| {
            map.get(k)
                .and_then(|e| e.blocked_until)
                .is_some_and(|until| until > now)
        })
    }

    fn fail_at(&self, keys: &[String], now: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, e| {
                e.blocked_until.is_some_and(|u| u > now)
                    || e.failures.back().is_some_and(|t| now - *t < WINDOW)
            });
        }
        for key in keys {
            let e = map.entry(key.clone()).or_default();
            while e.failures.front().is_some_and(|t| now - *t >= WINDOW) {
                e.failures.pop_front();
            }
            e.failures.push_back(now);
            if e.failures.len() >= MAX_FAILURES {
                e.blocked_until = Some(now + BLOCK);
                e.failures.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_the_name_and_the_address_not_others() {
        let l = Limiter::default();
        let keys = ["user:mrossi".to_owned(), "addr:127.0.0.1".to_owned()];
        for _ in 0..4 {
            l.fail(&keys);
        }
        assert!(!l.blocked(&keys));
        l.fail(&keys);
        assert!(l.blocked(&keys[..1]));
        assert!(l.blocked(&keys[1..]));
        assert!(!l.blocked(&["user:bianchi".to_owned()]));
    }

    #[test]
    fn failures_older_than_the_window_do_not_count_and_the_block_ends() {
        let l = Limiter::default();
        let key = ["user:mrossi".to_owned()];
        let t0 = Instant::now();
        for i in 0..4 {
            l.fail_at(&key, t0 + Duration::from_secs(i));
        }
        // The fifth comes after the first four left the 15-minute window.
        let later = t0 + WINDOW + Duration::from_secs(10);
        l.fail_at(&key, later);
        assert!(!l.blocked_at(&key, later));
        for i in 1..5 {
            l.fail_at(&key, later + Duration::from_secs(i));
        }
        let blocked_from = later + Duration::from_secs(4);
        assert!(l.blocked_at(&key, blocked_from + BLOCK - Duration::from_secs(1)));
        assert!(!l.blocked_at(&key, blocked_from + BLOCK));
    }
}
