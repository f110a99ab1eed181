//! The escalation block of `status` (SPEC §14): who acknowledged, who did
//! not, and the next held step.

use chrono::{TimeZone, Utc};
use serde_json::json;

use crate::error::Error;
use crate::ledger::Ledger;

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// `escalation: {"acknowledged", "not_acknowledged", "next": {"channel", "at"} | null}`.
pub fn annotate(ledger: &Ledger, alert_id: &str, doc: &mut serde_json::Value) -> Result<(), Error> {
    let s = ledger.escalation_summary(alert_id)?;
    doc["escalation"] = json!({
        "acknowledged": s.acknowledged,
        "not_acknowledged": s.not_acknowledged,
        "next": s.next.map(|(channel, at)| json!({ "channel": channel, "at": rfc3339(at) })),
    });
    Ok(())
}

/// One line for the text `status`, when anyone could acknowledge.
pub fn print(ledger: &Ledger, alert_id: &str, tz: chrono_tz::Tz) -> Result<(), Error> {
    let s = ledger.escalation_summary(alert_id)?;
    if s.acknowledged + s.not_acknowledged == 0 && s.next.is_none() {
        return Ok(());
    }
    let next = match s.next {
        Some((channel, at)) => format!(
            "; next: {channel} at {}",
            super::deliver::local_time(&rfc3339(at), tz)
        ),
        // No escalation, or every step already released or skipped.
        None => String::new(),
    };
    println!(
        "  acknowledged: {}, not acknowledged: {}{next}",
        s.acknowledged, s.not_acknowledged
    );
    Ok(())
}
