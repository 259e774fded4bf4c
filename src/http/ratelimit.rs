//! Per-key rate limiting: a token bucket for every API key that authenticated (so unknown keys
//! cannot grow the table), refilled at a steady rate up to a burst. A refused request learns
//! how long to wait (`Retry-After`). Buckets live in this process; several instances behind a
//! load balancer each allow the configured rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle, full ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `None` when `per_second` is not positive (rate limiting off).
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        (per_second > 0.0 && per_second.is_finite()).then(|| RateLimiter {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one token from the key's bucket, or says how long until one is there.
    pub fn check(&self, key_id: &str) -> Result<(), Duration> {
        self.check_n(key_id, 1)
    }

    /// Takes `n` tokens at once (at most the burst), or says how long until they are there.
    pub fn check_n(&self, key_id: &str, n: u32) -> Result<(), Duration> {
        self.take_at(key_id, f64::from(n.max(1)).min(self.burst), Instant::now())
    }

    #[cfg(test)]
    fn check_at(&self, key_id: &str, now: Instant) -> Result<(), Duration> {
        self.take_at(key_id, 1.0, now)
    }

    fn take_at(&self, key_id: &str, cost: f64, now: Instant) -> Result<(), Duration> {
        let mut buckets = crate::locked(&self.buckets);
        if buckets.len() > PRUNE_ABOVE {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets
            .entry(key_id.to_string())
            .or_insert((self.burst, now));
        let refilled = (*tokens
            + now.saturating_duration_since(*at).as_secs_f64() * self.per_second)
            .min(self.burst);
        *at = now;
        if refilled >= cost {
            *tokens = refilled - cost;
            Ok(())
        } else {
            *tokens = refilled;
            Err(Duration::from_secs_f64((cost - refilled) / self.per_second))
        }
    }
}

/// Whole seconds to put in `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let limiter = RateLimiter::new(2.0, 3).unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("k", t0).is_ok());
        }
        let wait = limiter.check_at("k", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Other keys have their own bucket.
        assert!(limiter.check_at("other", t0).is_ok());
        // Half a second later one token is back.
        assert!(
            limiter
                .check_at("k", t0 + Duration::from_millis(500))
                .is_ok()
        );
        assert!(
            limiter
                .check_at("k", t0 + Duration::from_millis(500))
                .is_err()
        );
        assert_eq!(retry_after_secs(Duration::from_millis(200)), 1);
        assert!(RateLimiter::new(0.0, 10).is_none());
    }
}
