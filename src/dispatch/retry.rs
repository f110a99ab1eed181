//! The retry policy, a pure function: capped exponential backoff with
//! jitter, never sooner than the provider's own `Retry-After`.

use std::time::Duration;

use crate::config::Retry;

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    RetryIn(Duration),
    GiveUp,
}

/// What to do after the `attempt`-th (1-based) transient failure.
/// `jitter` in [0, 1) spreads retries between 50 % and 100 % of the step so
/// a thousand failed deliveries do not all come back in the same second.
pub fn decide(
    policy: &Retry,
    attempt: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Decision {
    if attempt >= policy.max_attempts {
        return Decision::GiveUp;
    }
    let exp = attempt.saturating_sub(1).min(30);
    let step = policy
        .initial_backoff
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff);
    let jittered = step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    Decision::RetryIn(match retry_after {
        Some(after) => jittered.max(after),
        None => jittered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Retry {
        Retry {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = policy();
        assert_eq!(
            decide(&p, 1, None, 1.0),
            Decision::RetryIn(Duration::from_secs(2))
        );
        assert_eq!(
            decide(&p, 2, None, 1.0),
            Decision::RetryIn(Duration::from_secs(4))
        );
        assert_eq!(
            decide(&p, 3, None, 1.0),
            Decision::RetryIn(Duration::from_secs(8))
        );
        assert_eq!(
            decide(&p, 4, None, 1.0),
            Decision::RetryIn(Duration::from_secs(10))
        );
    }

    #[test]
    fn jitter_stays_between_half_and_full_step() {
        let p = policy();
        assert_eq!(
            decide(&p, 2, None, 0.0),
            Decision::RetryIn(Duration::from_secs(2))
        );
        let Decision::RetryIn(d) = decide(&p, 2, None, 0.5) else {
            panic!()
        };
        assert_eq!(d, Duration::from_secs(3));
    }

    #[test]
    fn provider_retry_after_is_a_floor() {
        let p = policy();
        assert_eq!(
            decide(&p, 1, Some(Duration::from_secs(37)), 0.0),
            Decision::RetryIn(Duration::from_secs(37))
        );
        assert_eq!(
            decide(&p, 3, Some(Duration::from_millis(10)), 1.0),
            Decision::RetryIn(Duration::from_secs(8))
        );
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let p = policy();
        assert!(matches!(decide(&p, 4, None, 0.3), Decision::RetryIn(_)));
        assert_eq!(decide(&p, 5, None, 0.3), Decision::GiveUp);
        assert_eq!(
            decide(&p, 50, Some(Duration::from_secs(1)), 0.3),
            Decision::GiveUp
        );
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let p = Retry {
            max_attempts: u32::MAX,
            ..policy()
        };
        assert_eq!(
            decide(&p, 1000, None, 1.0),
            Decision::RetryIn(Duration::from_secs(10))
        );
    }
}
