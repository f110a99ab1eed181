//! Readiness probe for `channels.sms` with `transport = "kannel"`: a
//! `sendsms` request with the configured user and password and **no
//! recipient**. Kannel checks the credentials first (403 "Authorization
//! failed") and then refuses the request for its missing number (4xx), so
//! an answer other than 403 proves smsbox is up and takes our login, and
//! nothing can be sent. (Whether bearerbox reaches the operator's SMSC is
//! on Kannel's admin status page, whose password allerta does not have.)

use std::time::Duration;

use super::Item;
use crate::config::Sms;

const ITEM: &str = "sms";

pub async fn probe(sms: &Sms) -> Item {
    let Some(url) = sms.url.as_deref() else {
        return Item::fail(
            ITEM,
            "channels.sms.url is not set",
            "set channels.sms.url to Kannel's sendsms URL",
        );
    };
    let mut parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return Item::fail(
                ITEM,
                format!("channels.sms.url `{url}`: {e}"),
                "correct channels.sms.url",
            );
        }
    };
    // What may be printed: the URL as configured, without any query.
    let shown = {
        let mut u = parsed.clone();
        u.set_query(None);
        let _ = u.set_password(None);
        u.to_string()
    };
    let user = sms.username.as_deref().unwrap_or("");
    let password = match sms.password.as_ref().map(|p| p.resolve()) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return Item::fail(
                ITEM,
                format!("the sendsms password for `{user}`: {e}"),
                "write the Kannel sendsms-user password where channels.sms.password_file / password_env points (Debian install: /etc/allerta/credentials/sms-password)",
            );
        }
        None => crate::config::Secret::new(String::new()),
    };
    let password = password.expose();
    if password.is_empty() {
        return Item::fail(
            ITEM,
            format!("the sendsms password for `{user}` is empty"),
            "write the Kannel sendsms-user password where channels.sms.password_file / password_env points (Debian install: /etc/allerta/credentials/sms-password)",
        );
    }
    parsed
        .query_pairs_mut()
        .append_pair("username", user)
        .append_pair("password", password);
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Item::fail(ITEM, format!("HTTP client: {e}"), "report this bug"),
    };
    let response = match client.get(parsed).send().await {
        Ok(r) => r,
        Err(e) => {
            // without_url: the request URL carries the password.
            return Item::fail(
                ITEM,
                format!("{shown}: not reachable: {}", root_cause(&e.without_url())),
                "start Kannel (bearerbox and smsbox) or correct channels.sms.url",
            );
        }
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let body = body.trim();
    if status.as_u16() == 403 {
        return Item::fail(
            ITEM,
            format!("{shown}: Kannel refused the login of `{user}`: {status} {body}"),
            "check channels.sms.username and the password against Kannel's sendsms-user group",
        );
    }
    if status.is_client_error() {
        return Item::ok(
            ITEM,
            format!(
                "{shown}: smsbox up, login of `{user}` accepted (request without recipient refused as expected: {status}), nothing sent"
            ),
        );
    }
    Item::fail(
        ITEM,
        format!("{shown}: unexpected answer {status} {body}"),
        "make channels.sms.url point at Kannel's sendsms (…/cgi-bin/sendsms)",
    )
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}
