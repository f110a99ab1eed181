//! Even pacing: one message every 1/rate seconds. Bursting a second's worth
//! at once (as token buckets do) provokes 429s from strict providers.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How far behind its schedule a busy lane may be and still catch up: a
/// few timer ticks of scheduling delay, never a second's worth of burst.
const CATCH_UP: Duration = Duration::from_millis(20);

pub struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(per_second: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(None),
        }
    }

    /// Waits for this caller's slot. The schedule is absolute: the timer
    /// rounds every sleep up to its 1 ms tick, so at rates above ~1,000/s
    /// most slots are already due when the lane asks, and are taken at once
    /// (sleeping for each would cap the channel near 900/s). A lane that
    /// fell behind by at most `CATCH_UP` catches up; one that was idle
    /// longer starts a fresh schedule, so idle time is never saved up for
    /// a burst.
    pub async fn wait(&self) {
        let (slot, now) = {
            // The lock is never held across an await; poisoning would need a
            // panic while computing two instants.
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = match *next {
                Some(n) if n + CATCH_UP >= now => n,
                _ => now,
            };
            *next = Some(slot + self.interval);
            (slot, now)
        };
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_evenly_spaced() {
        let pacer = Pacer::new(10.0);
        let start = Instant::now();
        for _ in 0..21 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    /// Above ~1,000/s the interval is shorter than the timer's 1 ms
    /// resolution: sleeping for every slot would cap the channel near
    /// 900/s. The schedule stays absolute, so the rate is exact.
    #[tokio::test(start_paused = true)]
    async fn rates_above_the_timer_resolution_are_kept() {
        for rate in [2_000.0, 5_000.0] {
            let pacer = Pacer::new(rate);
            let start = Instant::now();
            let n = 10_000;
            for _ in 0..n {
                pacer.wait().await;
            }
            let ideal = Duration::from_secs_f64(f64::from(n - 1) / rate);
            let took = start.elapsed();
            let error = (took.as_secs_f64() - ideal.as_secs_f64()).abs() / ideal.as_secs_f64();
            assert!(error < 0.03, "{rate}/s: {took:?} for an ideal {ideal:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_saved_up_for_a_burst() {
        let pacer = Pacer::new(10.0);
        pacer.wait().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        for _ in 0..3 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }
}
