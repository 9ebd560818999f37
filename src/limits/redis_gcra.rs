//! GCRA in Redis, so several instances behind a load balancer share one budget per
//! account or address instead of each granting its own.
//!
//! The whole decision is one Lua script (atomic; one round trip) that keeps, per key,
//! the "theoretical arrival time" (TAT) of the next request in milliseconds, with the
//! key expiring when the budget is full again, so idle keys cost nothing. The clock is
//! Redis's own `TIME`: instances with skewed clocks still agree.

use std::time::Duration;

use std::sync::Arc;

use redis::Script;
use redis::aio::ConnectionManager;

use crate::breaker::{Breaker, Refused};

/// `KEYS[1]` the bucket; `ARGV[1]` milliseconds per request (the emission interval);
/// `ARGV[2]` the burst. Returns `{allowed, remaining, retry_after_ms, reset_ms}`.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
local remaining = math.floor((interval * burst - (new_tat - now)) / interval)
return {1, remaining, 0, new_tat - now}
";

/// Gives one request back to `KEYS[1]` (`ARGV[1]` milliseconds per request): for
/// budgets that only count failures (see [`super::account`]).
const REFUND: &str = r"
local interval = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
tat = tat - interval
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], tat, 'PX', tat - now)
end
return 1
";

/// What the script decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub remaining: u32,
    pub retry_after: Duration,
    /// Until the budget is full again.
    pub reset: Duration,
}

#[derive(Clone)]
pub struct RedisGcra {
    connection: ConnectionManager,
    /// While Redis is down, checks skip it at once (the caller falls back).
    breaker: Arc<Breaker>,
    script: Script,
    refund: Script,
    prefix: String,
}

impl RedisGcra {
    pub fn new(connection: ConnectionManager, breaker: Arc<Breaker>, prefix: &str) -> Self {
        Self {
            connection,
            breaker,
            script: Script::new(GCRA),
            refund: Script::new(REFUND),
            prefix: format!("{prefix}ratelimit:"),
        }
    }

    /// Spends one request of `bucket`'s budget: `burst` at once, then one per
    /// `interval`.
    pub async fn check(
        &self,
        bucket: &str,
        interval: Duration,
        burst: u32,
    ) -> Result<Verdict, Refused<redis::RedisError>> {
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(format!("{}{bucket}", self.prefix));
        invocation
            .arg(interval.as_millis().max(1) as u64)
            .arg(burst);
        let (allowed, remaining, retry_after, reset): (i64, i64, i64, i64) = self
            .breaker
            .call(invocation.invoke_async(&mut connection))
            .await?;
        let millis = |ms: i64| Duration::from_millis(ms.max(0) as u64);
        Ok(Verdict {
            allowed: allowed == 1,
            remaining: remaining.clamp(0, i64::from(u32::MAX)) as u32,
            retry_after: millis(retry_after),
            reset: millis(reset),
        })
    }

    /// Gives one request of `bucket`'s budget back (see [`REFUND`]).
    pub async fn refund(
        &self,
        bucket: &str,
        interval: Duration,
    ) -> Result<(), Refused<redis::RedisError>> {
        let mut connection = self.connection.clone();
        let mut invocation = self.refund.key(format!("{}{bucket}", self.prefix));
        invocation.arg(interval.as_millis().max(1) as u64);
        let _: i64 = self
            .breaker
            .call(invocation.invoke_async(&mut connection))
            .await?;
        Ok(())
    }
}
