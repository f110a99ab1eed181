//! Readiness of `allerta serve`: the SMS gateway posts delivery reports to
//! `channels.sms.dlr_url`, so `serve` must answer there. The probe asks for
//! `/healthz` at the origin of `dlr_url` (or at `serve.listen` when no
//! `dlr_url` is set) and expects a 2xx.

use std::time::Duration;

use super::Item;
use crate::config::{Config, SmsTransport};

const ITEM: &str = "serve";
const TIMEOUT: Duration = Duration::from_secs(5);

/// The `/healthz` URL to probe, or `None` when nothing needs `serve`.
pub fn health_url(config: &Config) -> Option<Result<String, String>> {
    // Only a live SMS transport gets delivery reports; the outbox none.
    let dlr = config
        .channels
        .sms
        .as_ref()
        .filter(|s| s.transport != SmsTransport::Outbox)
        .and_then(|s| s.dlr_url.as_deref());
    match (dlr, config.serve.as_ref()) {
        (Some(dlr), _) => Some(
            reqwest::Url::parse(dlr)
                .map_err(|e| format!("channels.sms.dlr_url `{dlr}` is not a URL ({e})"))
                .and_then(|u| u.join("/healthz").map_err(|e| e.to_string()))
                .map(String::from),
        ),
        (None, Some(serve)) => {
            let listen = serve
                .listen
                .replace("0.0.0.0", "127.0.0.1")
                .replace("[::]", "[::1]");
            Some(Ok(format!("http://{listen}/healthz")))
        }
        (None, None) => None,
    }
}

pub async fn probe(url: &str) -> Item {
    let fix = "start allerta serve (`systemctl enable --now allerta-serve.service`) or correct channels.sms.dlr_url / serve.listen";
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => return Item::fail(ITEM, format!("HTTP client: {e}"), fix),
    };
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => Item::ok(ITEM, format!("{url}: {}", r.status())),
        Ok(r) => Item::fail(
            ITEM,
            format!("{url}: answered {} instead of 2xx", r.status()),
            "make channels.sms.dlr_url point at allerta serve (another service answers there)",
        ),
        Err(e) => Item::fail(
            ITEM,
            format!("{url}: not reachable: {}", root_cause(&e.without_url())),
            fix,
        ),
    }
}

/// The innermost cause ("Connection refused (os error 111)"): reqwest's
/// outer layers only repeat the URL.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

/// `[serve] dlr_token` is readable, not blank and long enough (SPEC §13):
/// a weak token lets anyone mark deliveries delivered or failed.
pub fn token(serve: &crate::config::Serve) -> Item {
    match serve.dlr_token() {
        Ok(_) => Item::ok(
            "dlr_token",
            format!(
                "set, at least {} characters",
                crate::config::MIN_DLR_TOKEN_LEN
            ),
        ),
        Err(e) => Item::fail(
            "dlr_token",
            e,
            "write a random token of at least 16 letters and digits where serve.dlr_token_file points (Debian install: /etc/allerta/credentials/dlr-token; `head -c 24 /dev/urandom | base64 | tr -d '/+=' > FILE`)",
        ),
    }
}
