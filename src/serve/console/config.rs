//! `[console]` (SPEC §17): who may log in to the officer console, for how
//! long a session lasts, and whether cookies carry `Secure`.
//!
//! ```toml
//! [console]
//! session_lifetime = "12h"       # default
//! secure_cookies = true          # default: true unless serve listens on loopback
//! [console.users]
//! mrossi = "$argon2id$v=19$m=19456,t=2,p=1$…"   # from `allerta console passwd mrossi`
//! ```
//!
//! User names are OS user names: the same identity as an alert's creator
//! and as `[approval] approvers`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    #[serde(default)]
    users: BTreeMap<String, String>,
    session_lifetime: Option<String>,
    secure_cookies: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// User name → argon2id PHC string (checked at load).
    pub users: BTreeMap<String, String>,
    pub session_lifetime: Duration,
    /// `None`: decided by the listening address (loopback → no `Secure`).
    pub secure_cookies: Option<bool>,
}

impl RawConsole {
    /// Checks every user name and hash; `Err((key, message))`.
    pub fn resolve(self) -> Result<ConsoleConfig, (String, String)> {
        let session_lifetime = match self.session_lifetime.as_deref() {
            None => DEFAULT_SESSION_LIFETIME,
            Some(text) => {
                let d = humantime::parse_duration(text).map_err(|e| {
                    (
                        "console.session_lifetime".to_owned(),
                        format!("`{text}`: {e}"),
                    )
                })?;
                if d.is_zero() {
                    return Err((
                        "console.session_lifetime".to_owned(),
                        "must be more than 0".to_owned(),
                    ));
                }
                d
            }
        };
        if self.users.is_empty() {
            return Err((
                "console.users".to_owned(),
                "name at least one user (add one with `allerta console passwd NAME`)".to_owned(),
            ));
        }
        for (name, hash) in &self.users {
            let key = format!("console.users.{name}");
            if !is_os_user_name(name) {
                return Err((
                    key,
                    "not an OS user name (lower-case letters, digits, `_`, `-`, `.`; not starting with a digit or `-`)".to_owned(),
                ));
            }
            super::password::check_hash(hash).map_err(|m| (key, m))?;
        }
        Ok(ConsoleConfig {
            users: self.users,
            session_lifetime,
            secure_cookies: self.secure_cookies,
        })
    }
}

/// The portable POSIX user-name shape that Debian's `adduser` accepts.
pub fn is_os_user_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c))
        && name.len() <= 32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(users: &[(&str, &str)]) -> RawConsole {
        RawConsole {
            users: users
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            session_lifetime: None,
            secure_cookies: None,
        }
    }

    #[test]
    fn defaults_to_twelve_hours_and_refuses_bad_names_and_hashes() {
        let hash = crate::serve::console::password::hash("segreto").unwrap();
        let c = raw(&[("mrossi", &hash)]).resolve().unwrap();
        assert_eq!(c.session_lifetime, Duration::from_secs(12 * 3600));
        assert_eq!(c.secure_cookies, None);
        let (key, _) = raw(&[("M Rossi", &hash)]).resolve().unwrap_err();
        assert_eq!(key, "console.users.M Rossi");
        let (_, message) = raw(&[("mrossi", "segreto")]).resolve().unwrap_err();
        assert!(message.contains("argon2id"), "{message}");
        assert!(raw(&[]).resolve().is_err());
    }
}
