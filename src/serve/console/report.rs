//! `/console/alerts/ID/report`: the after-action report, one printable
//! page (the print stylesheet makes it a clean PDF from the browser): the
//! alert, totals per channel, a timeline chart of deliveries per channel,
//! failures by reason, per-zone reach, the not-reached count and the
//! alert's audit trail.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use minijinja::{Value, context};

use super::{Console, alerts, local_time, svg};
use crate::ledger::ChannelCounts;

pub async fn page(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let user = match c.user(&headers) {
        Ok(u) => u,
        Err(d) => return d.into_response(),
    };
    let ctx = c
        .read(move |l, config| {
            let row = l.alert(Some(&id))?;
            let counts = l.counts(&id)?;
            let mut total = ChannelCounts::default();
            for c in counts.values() {
                total.total += c.total;
                total.pending += c.pending;
                total.sending += c.sending;
                total.sent += c.sent;
                total.delivered += c.delivered;
                total.failed += c.failed;
                total.skipped += c.skipped;
                total.acknowledged += c.acknowledged;
            }
            let mut series: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for (channel, at) in l.delivery_timeline(&id)? {
                series.entry(channel).or_default().push(at);
            }
            let start = crate::ledger::parse_utc(&row.created_at)
                .map(|t| t.timestamp_millis())
                .or_else(|| series.values().filter_map(|v| v.first()).copied().min())
                .unwrap_or(0);
            let tz = config.general.timezone;
            let chart = svg::timeline(&series, start, |ms| {
                chrono::DateTime::from_timestamp_millis(ms)
                    .map(|t| t.with_timezone(&tz).format("%H:%M:%S").to_string())
                    .unwrap_or_default()
            });
            let reach = l.zone_reach(&id)?;
            let zones = alerts::alert_zones(config, &row, &reach);
            let zone_rows: Vec<Value> = zones
                .iter()
                .map(|z| {
                    let r = reach.get(z).cloned().unwrap_or_default();
                    context! { id => z, recipients => r.recipients, reached => r.reached,
                    acknowledged => r.acknowledged }
                })
                .collect();
            let audit: Vec<Value> = l
                .audit_rows(Some(&id))?
                .into_iter()
                .map(|a| {
                    context! {
                        at => local_time(config, &a.at),
                        operator => a.operator,
                        host => a.host,
                        command => a.command,
                        detail => a.detail.to_string(),
                    }
                })
                .collect();
            Ok(context! {
                alert => super::ser(&row),
                created => local_time(config, &row.created_at),
                settled => row.settled_at.as_deref().map(|s| local_time(config, s)),
                now => local_time(config, &chrono::Utc::now().to_rfc3339()),
                counts => super::ser(&counts),
                total => super::ser(&total),
                chart => chart.map(Value::from_safe_string),
                failures => super::ser(&l.failure_reasons(&id)?),
                not_reached => l.not_reached(&id)?.len(),
                zones => zone_rows,
                audit,
                timezone => tz.name(),
            })
        })
        .await;
    match ctx {
        Ok(ctx) => c.render("report.html", &user, ctx),
        Err(r) => r,
    }
}
