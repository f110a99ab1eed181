//! Readiness probe for `channels.sms` with `transport = "http"`: a
//! commercial gateway's send API has no way to log in without sending, so
//! the probe opens a TCP connection to the URL's host and port (the
//! gateway is reachable from here) and says plainly that the login is
//! verified by the first real send.

use std::time::Duration;

use super::Item;
use crate::config::Sms;

const ITEM: &str = "sms";

pub async fn probe(sms: &Sms) -> Item {
    let fix_url = "correct channels.sms.url";
    let Some(url) = sms.url.as_deref() else {
        return Item::fail(ITEM, "channels.sms.url is not set", fix_url);
    };
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Item::fail(ITEM, format!("channels.sms.url: {e}"), fix_url),
    };
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        return Item::fail(ITEM, "channels.sms.url has no host or port", fix_url);
    };
    let host = host.trim_matches(['[', ']']);
    let shown = format!("{}://{host}:{port}", parsed.scheme());
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(_)) => Item::ok(
            ITEM,
            format!(
                "{shown}: reachable; this gateway's login can only be verified by a real send (e.g. `allerta send esercitazione --test --group personale`)"
            ),
        ),
        Ok(Err(e)) => Item::fail(
            ITEM,
            format!("{shown}: not reachable: {e}"),
            "check channels.sms.url, DNS and the firewall towards the SMS gateway",
        ),
        Err(_) => Item::fail(
            ITEM,
            format!("{shown}: no answer within 10 s"),
            "check channels.sms.url, DNS and the firewall towards the SMS gateway",
        ),
    }
}
