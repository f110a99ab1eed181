//! Readiness probe for `channels.email` with `transport = "smtp"`: connect,
//! EHLO, STARTTLS when offered (or TLS from the first byte for smtps://),
//! AUTH with the configured credentials, `MAIL FROM` with the configured
//! sender and `RSET`: the server has said yes to everything a send needs,
//! and no message was sent.

use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Mail, Rset};
use lettre::transport::smtp::extension::ClientId;

use super::Item;
use crate::config::Email;

const ITEM: &str = "email";
/// Upper bound for the whole probe, whatever `channels.email.timeout` says.
const PROBE_LIMIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    /// smtp://: STARTTLS when the server offers it.
    Opportunistic,
    /// smtp://…?tls=required: STARTTLS or fail.
    Required,
    /// smtps://: TLS from the first byte.
    Wrapper,
}

#[derive(Debug)]
struct Target {
    host: String,
    port: u16,
    tls: Tls,
}

impl Target {
    /// The URL without any user info, safe to print.
    fn shown(&self) -> String {
        let scheme = if self.tls == Tls::Wrapper {
            "smtps"
        } else {
            "smtp"
        };
        let query = if self.tls == Tls::Required {
            "?tls=required"
        } else {
            ""
        };
        format!("{scheme}://{}:{}{query}", self.host, self.port)
    }
}

fn parse_url(url: &str) -> Result<Target, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    let host = parsed
        .host_str()
        .ok_or("no host in the URL")?
        .trim_matches(['[', ']'])
        .to_owned();
    let tls_param = parsed
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let (tls, default_port) = match (parsed.scheme(), tls_param.as_deref()) {
        ("smtp", None | Some("opportunistic")) => (Tls::Opportunistic, 25),
        ("smtp", Some("required")) => (Tls::Required, 587),
        ("smtps", None) => (Tls::Wrapper, 465),
        (scheme, tls) => {
            return Err(format!(
                "unsupported scheme `{scheme}`{} (use smtp://, smtp://…?tls=required or smtps://)",
                tls.map(|t| format!(" with tls={t}")).unwrap_or_default()
            ));
        }
    };
    Ok(Target {
        host,
        port: parsed.port().unwrap_or(default_port),
        tls,
    })
}

pub async fn probe(config: &Email) -> Item {
    let Some(url) = config.url.as_deref() else {
        return Item::fail(
            ITEM,
            "channels.email.url is not set",
            "set channels.email.url, e.g. smtp://mail.example.it:587",
        );
    };
    let target = match parse_url(url) {
        Ok(t) => t,
        Err(e) => {
            return Item::fail(
                ITEM,
                format!("channels.email.url: {e}"),
                "correct channels.email.url",
            );
        }
    };
    let limit = config.timeout.min(PROBE_LIMIT);
    match tokio::time::timeout(limit, run(config, &target, limit)).await {
        Ok(item) => item,
        Err(_) => Item::fail(
            ITEM,
            format!(
                "{}: no complete answer within {} s",
                target.shown(),
                limit.as_secs()
            ),
            "check that the SMTP server is up and reachable from this host (firewall, channels.email.url)",
        ),
    }
}

async fn run(config: &Email, target: &Target, limit: Duration) -> Item {
    let shown = target.shown();
    let hello = ClientId::default();
    let tls_params = || TlsParameters::new(target.host.clone());
    let tls_fix = format!(
        "the server's certificate must be valid for `{}` and signed by a trusted CA; or correct the scheme in channels.email.url",
        target.host
    );

    let wrapper = match target.tls {
        Tls::Wrapper => match tls_params() {
            Ok(p) => Some(p),
            Err(e) => return Item::fail(ITEM, format!("{shown}: TLS setup: {e}"), tls_fix),
        },
        _ => None,
    };
    let mut conn = match AsyncSmtpConnection::connect_tokio1(
        (target.host.as_str(), target.port),
        Some(limit),
        &hello,
        wrapper,
        None,
    )
    .await
    {
        Ok(c) => c,
        Err(e) if e.is_tls() => {
            return Item::fail(ITEM, format!("{shown}: TLS failed: {e}"), tls_fix);
        }
        Err(e) if e.is_response() || e.is_permanent() || e.is_transient() => {
            return Item::fail(
                ITEM,
                format!("{shown}: the server refused the session: {e}"),
                "ask the mail server's administrator to accept connections from this host",
            );
        }
        Err(e) => {
            return Item::fail(
                ITEM,
                format!("{shown}: cannot connect: {e}"),
                format!(
                    "start the SMTP server at {}:{} or correct channels.email.url",
                    target.host, target.port
                ),
            );
        }
    };
    let mut steps = vec!["connected, EHLO ok".to_owned()];

    if target.tls == Tls::Wrapper {
        steps.push("TLS".into());
    } else if conn.can_starttls() {
        let params = match tls_params() {
            Ok(p) => p,
            Err(e) => return Item::fail(ITEM, format!("{shown}: TLS setup: {e}"), tls_fix),
        };
        if let Err(e) = conn.starttls(params, &hello).await {
            return Item::fail(ITEM, format!("{shown}: STARTTLS failed: {e}"), tls_fix);
        }
        steps.push("STARTTLS".into());
    } else if target.tls == Tls::Required {
        conn.abort().await;
        return Item::fail(
            ITEM,
            format!("{shown}: the server does not offer STARTTLS, and tls=required"),
            "enable STARTTLS on the server, or use smtps:// if it speaks TLS from the first byte",
        );
    } else {
        steps.push("no STARTTLS offered: unencrypted".into());
    }

    if let Some(user) = &config.username {
        let password = config.password.as_ref().map(|p| p.expose()).unwrap_or("");
        if password.is_empty() {
            conn.abort().await;
            return Item::fail(
                ITEM,
                format!("the password for {user} is empty"),
                "write the SMTP password where channels.email.password_file / password_env points (Debian install: /etc/allerta/credentials/smtp-password)",
            );
        }
        let credentials = Credentials::new(user.clone(), password.to_owned());
        match conn
            .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
            .await
        {
            Ok(_) => steps.push(format!("AUTH as {user}")),
            Err(e) => {
                conn.abort().await;
                return Item::fail(
                    ITEM,
                    format!("{shown}: {}", auth_problem(user, &e)),
                    auth_fix(&e),
                );
            }
        }
    }

    if let Ok(from) = config.from.parse::<lettre::message::Mailbox>() {
        let address: Address = from.email;
        match conn.command(Mail::new(Some(address.clone()), vec![])).await {
            Ok(_) => {
                steps.push(format!("sender {address} accepted"));
                let _ = conn.command(Rset).await;
            }
            Err(e) => {
                conn.abort().await;
                let needs_auth = e.status().is_some_and(|c| c.to_string() == "530");
                return if needs_auth {
                    Item::fail(
                        ITEM,
                        format!("{shown}: the server requires authentication: {e}"),
                        "set channels.email.username and its password (password_env or password_file)",
                    )
                } else {
                    Item::fail(
                        ITEM,
                        format!("{shown}: sender {address} refused: {e}"),
                        "correct channels.email.from, or ask the mail server's administrator to allow it for this account",
                    )
                };
            }
        }
    }
    let _ = conn.quit().await;
    steps.push("nothing sent".into());
    Item::ok(ITEM, format!("{shown}: {}", steps.join(", ")))
}

fn auth_problem(user: &str, e: &SmtpError) -> String {
    if e.is_permanent() || e.is_transient() {
        format!("authentication as {user} rejected: {e}")
    } else {
        format!("authentication as {user} impossible: {e}")
    }
}

fn auth_fix(e: &SmtpError) -> String {
    if e.is_client() {
        // No mechanism in common: often AUTH is offered only after TLS.
        "the server offers no AUTH PLAIN/LOGIN here: enable TLS (STARTTLS or smtps://) or ask its administrator".into()
    } else {
        "check channels.email.username and the password (password_env / password_file; Debian install: /etc/allerta/credentials/smtp-password)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_tls_mode_and_default_port() {
        let t = parse_url("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("127.0.0.1", 2525, Tls::Opportunistic)
        );
        let t = parse_url("smtp://mail.example.it?tls=required").unwrap();
        assert_eq!((t.port, t.tls), (587, Tls::Required));
        let t = parse_url("smtps://mail.example.it").unwrap();
        assert_eq!((t.port, t.tls), (465, Tls::Wrapper));
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("smtp://x?tls=sometimes").is_err());
    }

    #[test]
    fn the_shown_url_never_carries_user_info() {
        let t = parse_url("smtp://user:hunter2@mail.example.it:25").unwrap();
        assert!(!t.shown().contains("hunter2"), "{}", t.shown());
    }
}
