//! `/metrics` in the Prometheus text format. Kept small and honest: the
//! ledger's delivery counts (read at scrape time, so they include what
//! `send` wrote), the reports this process received, and a histogram of
//! how long deliveries took from accepted send to the report that settled
//! them (observed by this process only).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 9] = [1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    reports: BTreeMap<(&'static str, &'static str), u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        // A poisoned lock only means a panic while counting: keep counting.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner);
    }

    pub fn report(&self, source: &'static str, result: &'static str) {
        self.with(|i| *i.reports.entry((source, result)).or_default() += 1);
    }

    pub fn latency(&self, seconds: f64) {
        self.with(|i| {
            for (n, le) in BUCKETS.iter().enumerate() {
                if seconds <= *le {
                    i.buckets[n] += 1;
                }
            }
            i.count += 1;
            i.sum += seconds;
        });
    }

    /// The exposition text; `deliveries` are (channel, state, count).
    pub fn render(&self, deliveries: &[(String, String, u64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP allerta_deliveries Deliveries in the ledger by channel and state.\n# TYPE allerta_deliveries gauge"
        );
        for (channel, state, n) in deliveries {
            let _ = writeln!(
                out,
                "allerta_deliveries{{channel=\"{channel}\",state=\"{state}\"}} {n}"
            );
        }
        self.with(|i| {
            let _ = writeln!(
                out,
                "# HELP allerta_reports_received_total Delivery reports received by this process, by source and result.\n# TYPE allerta_reports_received_total counter"
            );
            for ((source, result), n) in &i.reports {
                let _ = writeln!(
                    out,
                    "allerta_reports_received_total{{source=\"{source}\",result=\"{result}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "# HELP allerta_report_latency_seconds Time from a delivery's accepted send to the report that settled it.\n# TYPE allerta_report_latency_seconds histogram"
            );
            for (n, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "allerta_report_latency_seconds_bucket{{le=\"{le}\"}} {}",
                    i.buckets[n]
                );
            }
            let _ = writeln!(
                out,
                "allerta_report_latency_seconds_bucket{{le=\"+Inf\"}} {}\nallerta_report_latency_seconds_sum {}\nallerta_report_latency_seconds_count {}",
                i.count, i.sum, i.count
            );
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.latency(0.5);
        m.latency(7.0);
        m.report("kannel", "delivered");
        let text = m.render(&[("sms".into(), "delivered".into(), 2)]);
        assert!(
            text.contains("allerta_report_latency_seconds_bucket{le=\"1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("allerta_report_latency_seconds_bucket{le=\"10\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("allerta_report_latency_seconds_count 2"),
            "{text}"
        );
        assert!(text.contains("allerta_deliveries{channel=\"sms\",state=\"delivered\"} 2"));
        assert!(
            text.contains(
                "allerta_reports_received_total{source=\"kannel\",result=\"delivered\"} 1"
            )
        );
    }
}
