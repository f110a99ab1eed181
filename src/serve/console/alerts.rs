//! `/console/` (the alerts, newest first) and `/console/alerts/ID`: one
//! alert live. The page polls `…/live.json` every second (console.js), so
//! the counts move without a reload; without JavaScript it still shows the
//! counts of the moment it was loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use minijinja::{Value, context};
use serde::Serialize;

use super::svg::{self, MapZone};
use super::{Console, local_time};
use crate::audience::Selector;
use crate::config::Config;
use crate::ledger::{AlertRow, ChannelCounts, ZoneReach};

/// How many alerts the list shows.
const LIST_LIMIT: usize = 200;

#[derive(Serialize)]
struct ListedAlert {
    id: String,
    created: String,
    template: String,
    status: String,
    msg_type: String,
    state: String,
    headline: String,
    total: u64,
    reached: u64,
    failed: u64,
    unsettled: u64,
}

pub async fn list(State(c): State<Arc<Console>>, headers: HeaderMap) -> Response {
    let user = match c.user(&headers) {
        Ok(u) => u,
        Err(d) => return d.into_response(),
    };
    let listed = c
        .read(|l, config| {
            let mut out = Vec::new();
            for a in l.alerts(None)?.into_iter().take(LIST_LIMIT) {
                let counts = l.counts(&a.id)?;
                let sum = |f: fn(&ChannelCounts) -> u64| counts.values().map(f).sum::<u64>();
                out.push(ListedAlert {
                    created: local_time(config, &a.created_at),
                    total: sum(|c| c.total),
                    reached: sum(|c| c.sent + c.delivered),
                    failed: sum(|c| c.failed),
                    unsettled: sum(|c| c.unsettled()),
                    id: a.id,
                    template: a.template,
                    status: a.status.to_string(),
                    msg_type: a.msg_type.to_string(),
                    state: a.state.to_string(),
                    headline: a.headline,
                });
            }
            Ok(out)
        })
        .await;
    match listed {
        Ok(alerts) => c.render(
            "alerts.html",
            &user,
            context! { alerts => super::ser(&alerts) },
        ),
        Err(r) => r,
    }
}

/// What the live page shows and `live.json` refreshes.
#[derive(Serialize)]
pub struct Live {
    pub state: String,
    pub channels: BTreeMap<String, ChannelCounts>,
    pub zones: BTreeMap<String, ZoneReach>,
}

fn live_of(l: &crate::ledger::Ledger, id: &str) -> Result<Live, crate::ledger::LedgerError> {
    Ok(Live {
        state: l.alert_state(id)?.as_str().to_owned(),
        channels: l.counts(id)?,
        zones: l.zone_reach(id)?,
    })
}

/// The zones an alert is about: those its audience names (every zone for
/// `all`), and those its recipients live in.
pub fn alert_zones(
    config: &Config,
    row: &AlertRow,
    reach: &BTreeMap<String, ZoneReach>,
) -> BTreeSet<String> {
    let audience = crate::alert::send::stored_audience(&row.audience);
    let mut zones: BTreeSet<String> = reach.keys().cloned().collect();
    for s in &audience.selectors {
        match s {
            Selector::All => zones.extend(config.zones.keys().map(|z| z.as_str().to_owned())),
            Selector::Zone(z) => {
                zones.insert(z.as_str().to_owned());
            }
            Selector::Group(_) => {}
        }
    }
    zones
}

/// The inline SVG map of the configured zones, the alert's ones strong.
pub fn map(
    config: &Config,
    zones: &BTreeSet<String>,
    reach: &BTreeMap<String, ZoneReach>,
) -> Option<String> {
    let drawn: Vec<MapZone<'_>> = config
        .zones
        .iter()
        .filter_map(|(id, z)| {
            let r = reach.get(id.as_str()).cloned().unwrap_or_default();
            Some(MapZone {
                id: id.as_str(),
                name: &z.name,
                polygon: z.polygon.as_deref()?,
                in_alert: zones.contains(id.as_str()),
                label: format!("{} / {} reached", r.reached, r.recipients),
            })
        })
        .collect();
    svg::zones_map(&drawn)
}

pub async fn one(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let user = match c.user(&headers) {
        Ok(u) => u,
        Err(d) => return d.into_response(),
    };
    let page = c
        .read(move |l, config| {
            let row = l.alert(Some(&id))?;
            let live = live_of(l, &id)?;
            let zones = alert_zones(config, &row, &live.zones);
            let map = map(config, &zones, &live.zones);
            let zone_rows: Vec<Value> = zones
                .iter()
                .map(|z| {
                    let r = live.zones.get(z).cloned().unwrap_or_default();
                    let name = config
                        .zones
                        .iter()
                        .find(|(k, _)| k.as_str() == z)
                        .map(|(_, v)| v.name.clone())
                        .unwrap_or_else(|| z.clone());
                    context! { id => z, name, recipients => r.recipients,
                    reached => r.reached, acknowledged => r.acknowledged }
                })
                .collect();
            let sum = |f: fn(&ChannelCounts) -> u64| live.channels.values().map(f).sum::<u64>();
            let sum = context! {
                out => sum(|c| c.sent + c.delivered),
                total => sum(|c| c.total),
                failed => sum(|c| c.failed),
                unsettled => sum(|c| c.unsettled()),
            };
            Ok(context! {
                sum,
                alert => super::ser(&row),
                created => local_time(config, &row.created_at),
                live => super::ser(&live),
                zones => zone_rows,
                map => map.map(Value::from_safe_string),
            })
        })
        .await;
    match page {
        Ok(ctx) => c.render("alert.html", &user, ctx),
        Err(r) => r,
    }
}

pub async fn live(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if c.user(&headers).is_err() {
        return (axum::http::StatusCode::UNAUTHORIZED, "log in again\n").into_response();
    }
    match c.read(move |l, _| live_of(l, &id)).await {
        Ok(live) => Json(live).into_response(),
        Err(r) => r,
    }
}
