//! Inline SVG drawn on the server: the alert's zones as a map (from the
//! `[zones.*] polygon`s of the configuration, the same polygons the CAP
//! `<area>` carries; no tiles) and the after-action timeline. Every text
//! is XML-escaped here: these strings go into the page unescaped.

use std::collections::BTreeMap;
use std::fmt::Write;

/// One zone to draw.
pub struct MapZone<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub polygon: &'a str,
    /// Part of the alert (drawn strong) or only context (pale).
    pub in_alert: bool,
    /// "reached / recipients", shown under the name.
    pub label: String,
}

/// Colours with at least 4.5:1 contrast on white (WCAG AA) for lines and
/// text, one per channel.
const PALETTE: [&str; 8] = [
    "#1d4ed8", "#b91c1c", "#047857", "#7c3aed", "#b45309", "#be185d", "#0f766e", "#374151",
];

pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `"lat,lon lat,lon …"` (CAP's polygon form) → points.
pub fn parse_polygon(text: &str) -> Option<Vec<(f64, f64)>> {
    let points = text
        .split_whitespace()
        .map(|pair| {
            let (lat, lon) = pair.split_once(',')?;
            Some((lat.trim().parse().ok()?, lon.trim().parse().ok()?))
        })
        .collect::<Option<Vec<(f64, f64)>>>()?;
    (points.len() >= 3).then_some(points)
}

/// The map, or `None` when no zone has a usable polygon.
pub fn zones_map(zones: &[MapZone<'_>]) -> Option<String> {
    let shapes: Vec<(&MapZone<'_>, Vec<(f64, f64)>)> = zones
        .iter()
        .filter_map(|z| parse_polygon(z.polygon).map(|p| (z, p)))
        .collect();
    let all = shapes.iter().flat_map(|(_, p)| p.iter());
    let (mut min_lat, mut max_lat, mut min_lon, mut max_lon) =
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(lat, lon) in all {
        min_lat = min_lat.min(lat);
        max_lat = max_lat.max(lat);
        min_lon = min_lon.min(lon);
        max_lon = max_lon.max(lon);
    }
    if shapes.is_empty() {
        return None;
    }
    // Equirectangular with the longitude scaled at the mean latitude:
    // exact enough across a comune.
    let k = ((min_lat + max_lat) / 2.0).to_radians().cos();
    let (w_deg, h_deg) = (
        ((max_lon - min_lon) * k).max(1e-6),
        (max_lat - min_lat).max(1e-6),
    );
    let width = 320.0;
    let height = (width * h_deg / w_deg).clamp(120.0, 480.0);
    let pad = 12.0;
    let scale = ((width - 2.0 * pad) / w_deg).min((height - 2.0 * pad) / h_deg);
    let project = |(lat, lon): (f64, f64)| {
        (
            pad + (lon - min_lon) * k * scale,
            pad + (max_lat - lat) * scale,
        )
    };
    let mut svg = format!(
        r#"<svg class="map" viewBox="0 0 {width:.0} {height:.0}" role="img" aria-labelledby="map-title" xmlns="http://www.w3.org/2000/svg"><title id="map-title">Map of the alert's zones</title>"#
    );
    for (z, points) in &shapes {
        let (fill, opacity, stroke) = if z.in_alert {
            ("#1d4ed8", "0.25", "#1e3a8a")
        } else {
            ("#6b7280", "0.10", "#6b7280")
        };
        let pts: Vec<String> = points
            .iter()
            .map(|&p| {
                let (x, y) = project(p);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            svg,
            r#"<polygon data-zone="{}" points="{}" fill="{fill}" fill-opacity="{opacity}" stroke="{stroke}" stroke-width="1.5"><title>{}</title></polygon>"#,
            esc(z.id),
            pts.join(" "),
            esc(z.name)
        );
        let n = points.len() as f64;
        let (cx, cy) = points.iter().fold((0.0, 0.0), |(x, y), &p| {
            let (px, py) = project(p);
            (x + px / n, y + py / n)
        });
        let _ = write!(
            svg,
            r##"<text x="{cx:.1}" y="{cy:.1}" text-anchor="middle" font-size="11" fill="#111827">{}</text>"##,
            esc(z.name)
        );
        if z.in_alert {
            let _ = write!(
                svg,
                r##"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#111827" data-live-map="{}">{}</text>"##,
                cy + 13.0,
                esc(z.id),
                esc(&z.label)
            );
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// Deliveries gone out over time, one cumulative line per channel.
/// `series`: channel → sorted send times (ms); `label` formats a time.
pub fn timeline(
    series: &BTreeMap<String, Vec<i64>>,
    start_ms: i64,
    label: impl Fn(i64) -> String,
) -> Option<String> {
    let end_ms = series.values().filter_map(|v| v.last()).copied().max()?;
    let max = series.values().map(Vec::len).max().unwrap_or(0).max(1);
    let span = (end_ms - start_ms).max(1000) as f64;
    let (width, height, left, right, top, bottom) = (640.0, 260.0, 48.0, 32.0, 12.0, 56.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let x = |t: i64| left + (t - start_ms).max(0) as f64 / span * plot_w;
    let y = |n: usize| top + plot_h - n as f64 / max as f64 * plot_h;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {width:.0} {height:.0}" role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg"><title id="chart-title">Deliveries sent per channel over time</title>"#
    );
    // Axes, four ticks each.
    let _ = write!(
        svg,
        r##"<g stroke="#4b5563" stroke-width="1"><line x1="{left}" y1="{top}" x2="{left}" y2="{:.1}"/><line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/></g>"##,
        top + plot_h,
        top + plot_h,
        left + plot_w,
        top + plot_h
    );
    for i in 0..=4 {
        let n = max * i / 4;
        let t = start_ms + (span as i64) * i as i64 / 4;
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#111827">{n}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#111827">{}</text>"##,
            left - 4.0,
            y(n) + 3.0,
            x(t),
            top + plot_h + 14.0,
            esc(&label(t))
        );
    }
    for (i, (channel, times)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut d = format!("M{:.1},{:.1}", x(start_ms), y(0));
        for (n, &t) in times.iter().enumerate() {
            let _ = write!(d, " H{:.1} V{:.1}", x(t), y(n + 1));
        }
        let _ = write!(
            svg,
            r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"><title>{}: {}</title></path>"#,
            esc(channel),
            times.len()
        );
        let lx = left + (i as f64) * 110.0;
        let _ = write!(
            svg,
            r##"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#111827">{} ({})</text>"##,
            height - 22.0,
            lx + 16.0,
            height - 12.0,
            esc(channel),
            times.len()
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polygon_is_drawn_and_names_are_escaped() {
        assert!(parse_polygon("43.7,11.0 43.8").is_none());
        let zones = [MapZone {
            id: "centro",
            name: "<Centro & co>",
            polygon: "43.73,11.01 43.74,11.03 43.72,11.04 43.73,11.01",
            in_alert: true,
            label: "1 / 2".into(),
        }];
        let svg = zones_map(&zones).unwrap();
        assert!(svg.contains("<polygon data-zone=\"centro\""));
        assert!(svg.contains("&lt;Centro &amp; co&gt;"));
        assert!(!svg.contains("<Centro"));
    }

    #[test]
    fn the_timeline_has_one_line_per_channel() {
        let mut s = BTreeMap::new();
        s.insert("sms".to_owned(), vec![1_000, 2_000, 3_000]);
        s.insert("email".to_owned(), vec![1_500]);
        let svg = timeline(&s, 0, |t| format!("{t}")).unwrap();
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg.contains("sms (3)"));
        assert!(timeline(&BTreeMap::new(), 0, |t| format!("{t}")).is_none());
    }
}
