//! The per-account throttle on password checks: however many addresses an attacker
//! guesses from, one account (keyed by its normalized email, whether or not such an
//! account exists, so the throttle says nothing about that) gets a burst of
//! `--rate-login-account-per-minute` failed checks, then one more every 60/n seconds.
//!
//! It cannot lock the owner out for long: a check is reserved before the password is
//! verified (so concurrent guesses cannot all slip through) and given back when the
//! password was right, so successful logins cost nothing, and after an attack stops
//! the next check is allowed within 60/n seconds.
//!
//! GCRA like the other budgets, but with a refund, which governor does not offer: in
//! this process a small map of "theoretical arrival times", or in Redis the shared
//! script plus [`RedisGcra::refund`] when `--redis-url` is given (falling back to this
//! process when Redis cannot be reached, as the other budgets do).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::redis_gcra::RedisGcra;
use crate::auth::sha256_hex;

pub struct AccountThrottle {
    enabled: bool,
    /// Time that gives back one failed check.
    interval: Duration,
    burst: u32,
    /// Theoretical arrival time of the next check, per key (in-process budget).
    local: Mutex<HashMap<String, Instant>>,
    shared: Option<RedisGcra>,
}

/// A check reserved by [`AccountThrottle::reserve`]; give it back with
/// [`AccountThrottle::refund`] when the password was right.
#[derive(Debug)]
pub struct Reservation {
    key: String,
    /// Whether it was spent in Redis (then refunded there too).
    shared: bool,
}

impl AccountThrottle {
    pub fn new(enabled: bool, per_minute: u32, shared: Option<RedisGcra>) -> Self {
        let per_minute = per_minute.max(1);
        Self {
            enabled,
            interval: Duration::from_secs(60) / per_minute,
            burst: per_minute,
            local: Mutex::new(HashMap::new()),
            shared,
        }
    }

    /// Reserves one password check for the account `email_key`, or says how long to
    /// wait.
    pub async fn reserve(&self, email_key: &str) -> Result<Reservation, Duration> {
        // Hashed: emails stay out of Redis keys, and every key has the same length.
        let key = format!("login-account:{}", sha256_hex(email_key));
        if !self.enabled {
            return Ok(Reservation { key, shared: false });
        }
        if let Some(shared) = &self.shared {
            match shared.check(&key, self.interval, self.burst).await {
                Ok(verdict) if verdict.allowed => return Ok(Reservation { key, shared: true }),
                Ok(verdict) => return Err(verdict.retry_after),
                // Redis is down (the breaker logs it): judge locally.
                Err(_) => {}
            }
        }
        self.reserve_here(&key, Instant::now())?;
        Ok(Reservation { key, shared: false })
    }

    /// Gives a reserved check back (the password was right).
    pub async fn refund(&self, reservation: Reservation) {
        if !self.enabled {
            return;
        }
        if let (true, Some(shared)) = (reservation.shared, &self.shared) {
            // Redis is down (the breaker logs it): give it back locally instead.
            if shared.refund(&reservation.key, self.interval).await.is_ok() {
                return;
            }
        }
        self.refund_here(&reservation.key, Instant::now());
    }

    fn reserve_here(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut tats = crate::sync::lock(&self.local);
        let tat = tats.get(key).copied().filter(|t| *t > now).unwrap_or(now);
        let new_tat = tat + self.interval;
        let ahead = new_tat - now;
        let allowance = self.interval * self.burst;
        if ahead > allowance {
            return Err(ahead - allowance);
        }
        tats.insert(key.to_owned(), new_tat);
        Ok(())
    }

    fn refund_here(&self, key: &str, now: Instant) {
        let mut tats = crate::sync::lock(&self.local);
        if let Some(tat) = tats.get_mut(key) {
            match tat.checked_sub(self.interval) {
                Some(earlier) if earlier > now => *tat = earlier,
                _ => {
                    tats.remove(key);
                }
            }
        }
    }

    /// Forgets accounts whose budget is full again, so the map holds only accounts
    /// with recent failures.
    pub fn forget_idle_keys(&self) {
        let now = Instant::now();
        let mut tats = crate::sync::lock(&self.local);
        tats.retain(|_, tat| *tat > now);
        tats.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_failures_then_one_per_interval() {
        let throttle = AccountThrottle::new(true, 6, None);
        let start = Instant::now();
        for _ in 0..6 {
            throttle.reserve_here("a", start).unwrap();
        }
        let wait = throttle.reserve_here("a", start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        // Another account is not affected.
        throttle.reserve_here("b", start).unwrap();
        // One interval later, one more check.
        let later = start + Duration::from_secs(10);
        throttle.reserve_here("a", later).unwrap();
        assert!(throttle.reserve_here("a", later).is_err());
        // After a full minute without attempts the whole burst is back.
        let idle = later + Duration::from_secs(60);
        for _ in 0..6 {
            throttle.reserve_here("a", idle).unwrap();
        }
    }

    #[test]
    fn refunded_checks_cost_nothing() {
        let throttle = AccountThrottle::new(true, 3, None);
        let now = Instant::now();
        for _ in 0..50 {
            throttle.reserve_here("owner", now).unwrap();
            throttle.refund_here("owner", now);
        }
        for _ in 0..3 {
            throttle.reserve_here("owner", now).unwrap();
        }
        assert!(throttle.reserve_here("owner", now).is_err());
        throttle.forget_idle_keys();
        assert_eq!(
            crate::sync::lock(&throttle.local).len(),
            1,
            "still throttled"
        );
    }
}
