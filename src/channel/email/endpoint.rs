//! Where the SMTP server is and how to talk to it, parsed once from
//! `channels.email.url` (and the separate credential keys):
//! `smtp://host[:port]` (STARTTLS when offered), `smtps://host[:port]`
//! (TLS from the first byte), `?tls=required` (refuse to go on without
//! STARTTLS) or `?tls=none` (never STARTTLS, a local relay only).

use crate::config::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain TCP, upgraded with STARTTLS when the server offers it.
    Opportunistic,
    /// Plain TCP that must be upgraded with STARTTLS.
    StarttlsRequired,
    /// Plain TCP, never upgraded.
    None,
    /// TLS from the first byte (smtps://).
    Implicit,
}

#[derive(Debug)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Credentials given in the URL (`smtp://user:pass@host`), used when the
    /// config has no `username`.
    pub url_username: Option<String>,
    pub url_password: Option<Secret>,
    /// The URL without credentials, for messages and `describe()`.
    pub display: String,
}

impl Endpoint {
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text).map_err(|e| format!("`{}`: {e}", redact(text)))?;
        let (implicit, default_port) = match url.scheme() {
            "smtp" => (false, 25),
            "smtps" => (true, 465),
            other => {
                return Err(format!(
                    "scheme `{other}` is not supported (use smtp:// or smtps://)"
                ));
            }
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("the URL has no host".into()),
        };
        if !url.path().is_empty() && url.path() != "/" {
            return Err(format!("unexpected path `{}` in an SMTP URL", url.path()));
        }
        let mut security = if implicit {
            Security::Implicit
        } else {
            Security::Opportunistic
        };
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("tls", "required") if !implicit => security = Security::StarttlsRequired,
                ("tls", "opportunistic") if !implicit => security = Security::Opportunistic,
                ("tls", "none") if !implicit => security = Security::None,
                ("tls", "implicit" | "wrapper") if implicit => {}
                ("tls", v) => {
                    return Err(format!(
                        "tls={v} is not valid for {}:// (smtp:// takes tls=required, tls=opportunistic or tls=none; smtps:// is always TLS)",
                        url.scheme()
                    ));
                }
                (k, _) => return Err(format!("unknown URL parameter `{k}` (only tls=…)")),
            }
        }
        let decode = |s: &str| {
            percent_decode(s)
                .map_err(|()| "the credentials in the URL are not valid UTF-8".to_owned())
        };
        let url_username = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let url_password = url.password().map(decode).transpose()?.map(Secret::new);
        let port = url.port().unwrap_or(default_port);
        let host_in_url = match url.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            _ => host.clone(),
        };
        let query = match security {
            Security::StarttlsRequired => "?tls=required",
            Security::None => "?tls=none",
            Security::Opportunistic | Security::Implicit => "",
        };
        let display = format!("{}://{host_in_url}:{port}{query}", url.scheme());
        Ok(Self {
            host,
            port,
            security,
            url_username,
            url_password,
            display,
        })
    }

    /// True when the server is on this machine: a password may then travel
    /// without TLS (nobody else can read loopback traffic).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// The URL with any `user:password@` removed, for error messages.
fn redact(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***@{}", &text[..s + 3], &text[at + 1..]),
        _ => text.to_owned(),
    }
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_url_defaults_to_opportunistic_starttls_on_port_25() {
        let e = Endpoint::parse("smtp://mail.comune.example.it").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("mail.comune.example.it", 25));
        assert_eq!(e.security, Security::Opportunistic);
        assert_eq!(e.display, "smtp://mail.comune.example.it:25");
    }

    #[test]
    fn tls_required_and_smtps_are_recognised() {
        let e = Endpoint::parse("smtp://127.0.0.1:2525?tls=required").unwrap();
        assert_eq!(e.security, Security::StarttlsRequired);
        assert!(e.is_loopback());
        let e = Endpoint::parse("smtps://mail.example.it").unwrap();
        assert_eq!((e.port, e.security), (465, Security::Implicit));
        assert!(!e.is_loopback());
    }

    #[test]
    fn credentials_in_the_url_are_taken_out_of_the_display() {
        let e = Endpoint::parse("smtp://allerta:x%40pw9@127.0.0.1:2525").unwrap();
        assert_eq!(e.url_username.as_deref(), Some("allerta"));
        assert_eq!(e.url_password.as_ref().map(Secret::expose), Some("x@pw9"));
        assert_eq!(e.display, "smtp://127.0.0.1:2525");
        assert!(!format!("{e:?}").contains("pw9"));
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_the_password() {
        for bad in [
            "http://127.0.0.1",
            "smtp://127.0.0.1?tls=maybe",
            "smtp://127.0.0.1?foo=1",
            "smtps://127.0.0.1?tls=required",
            "smtp://127.0.0.1/path",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        let err = Endpoint::parse("smtp://u:topsecret@[bad").unwrap_err();
        assert!(!err.contains("topsecret"), "{err}");
    }
}
