//! What the officer needs to read about SMS after a send: how many are on a
//! phone (delivered), how many the gateway took but have not reported yet,
//! and how many failed.

use std::collections::BTreeMap;

use crate::config::{Config, SmsTransport};
use crate::ledger::ChannelCounts;

/// True when the SMS transport asks for delivery reports.
fn expects_reports(config: &Config) -> bool {
    config
        .channels
        .sms
        .as_ref()
        .is_some_and(|s| s.transport != SmsTransport::Outbox && s.dlr_url.is_some())
}

/// One line for human output, when the alert has SMS deliveries.
pub fn line(config: &Config, counts: &BTreeMap<String, ChannelCounts>) -> Option<String> {
    let c = counts.get("sms")?;
    Some(if expects_reports(config) {
        format!(
            "sms: {} delivered, {} sent (awaiting report), {} failed",
            c.delivered, c.sent, c.failed
        )
    } else {
        format!(
            "sms: {} sent, {} failed (no delivery reports configured)",
            c.sent + c.delivered,
            c.failed
        )
    })
}

/// Adds `awaiting_report` to the `sms` entry of a status document.
pub fn annotate(config: &Config, doc: &mut serde_json::Value) {
    if let Some(sms) = doc["channels"].get_mut("sms") {
        let sent = sms["sent"].as_u64().unwrap_or(0);
        sms["awaiting_report"] = serde_json::json!(if expects_reports(config) { sent } else { 0 });
    }
}
