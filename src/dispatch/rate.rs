//! Even pacing: one message every 1/rate seconds. Bursting a second's worth
//! at once (as token buckets do) provokes 429s from strict providers.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

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

    /// Waits for this caller's slot.
    pub async fn wait(&self) {
        let slot = {
            // The lock is never held across an await; poisoning would need a
            // panic while computing two instants.
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
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
