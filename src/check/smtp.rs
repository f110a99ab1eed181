//! Readiness probe for `channels.email` with `transport = "smtp"`. It runs
//! the email channel's own connection code (`Smtp::probe`: TCP, TLS or
//! STARTTLS as the URL says, trusted CAs including `ca_file`, EHLO, AUTH,
//! the no-password-in-clear rule), then `MAIL FROM` with the configured
//! sender and `RSET`: what passes here is what sending will do, and no
//! message is sent.

use super::Item;
use crate::channel::email::Smtp;
use crate::channel::{Channel, DeliveryError};
use crate::config::Email;

const ITEM: &str = "email";

pub async fn probe(config: &Email) -> Item {
    if let (Some(user), Some(password)) = (&config.username, &config.password)
        && let Err(e) = password.resolve()
    {
        return Item::fail(
            ITEM,
            format!("the password for {user}: {e}"),
            "write the SMTP password where channels.email.password_file / password_env points (Debian install: /etc/allerta/credentials/smtp-password)",
        );
    }
    let smtp = match Smtp::new(config) {
        Ok(s) => s,
        Err(e) => {
            return Item::fail(
                ITEM,
                e.0,
                "correct the [channels.email] settings named in the message",
            );
        }
    };
    match smtp.probe().await {
        Ok(()) => Item::ok(
            ITEM,
            format!(
                "{}: session opened{}, sender accepted, nothing sent",
                smtp.describe(),
                if config.username.is_some() {
                    ", logged in"
                } else {
                    ""
                }
            ),
        ),
        Err(e) => {
            let (detail, fix) = split_hint(&e);
            Item::fail(ITEM, detail, fix)
        }
    }
}

/// The channel's messages end with their own hint in parentheses ("…: 535
/// 5.7.8 … (check channels.email.username and password)"): that becomes
/// the fix. A failed connection has none: say how to get one.
fn split_hint(e: &DeliveryError) -> (String, String) {
    let text = e.to_string();
    if let Some(open) = text.rfind(" (")
        && text.ends_with(')')
    {
        let hint = &text[open + 2..text.len() - 1];
        // "(os error 111)" is the system's, not a hint.
        if !hint.starts_with("os error") {
            return (text[..open].to_owned(), hint.to_owned());
        }
    }
    let fix = if text.contains("cannot connect") || text.contains("no answer") {
        "start the SMTP server, or correct channels.email.url (host and port) and the firewall"
    } else {
        "correct channels.email (url, username, password, ca_file) as the message says"
    };
    (text, fix.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channels_hint_becomes_the_fix() {
        let e = DeliveryError::ChannelDown {
            reason: "smtp://x:25 refused the login of `a`: 535 5.7.8 no (check channels.email.username and password)".into(),
        };
        let (detail, fix) = split_hint(&e);
        assert!(detail.ends_with("535 5.7.8 no"), "{detail}");
        assert_eq!(fix, "check channels.email.username and password");
    }

    #[test]
    fn a_refused_connection_says_to_start_the_server() {
        let e = DeliveryError::transient(
            "cannot connect to smtp://127.0.0.1:2:25: Connection refused (os error 111)",
        );
        let (detail, fix) = split_hint(&e);
        assert!(
            detail.contains("Connection refused (os error 111)"),
            "{detail}"
        );
        assert!(fix.starts_with("start the SMTP server"), "{fix}");
    }
}
