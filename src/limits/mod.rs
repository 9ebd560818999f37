//! Rate limits: GCRA (governor) per account, or per client address for anonymous
//! callers, by route class. Answers 429 in the envelope with `Retry-After`, and every
//! limited response carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` so clients can slow down before they hit the wall.
//!
//! The budgets live in this process (governor) by default, so each instance limits on
//! its own. With `--redis-url` they live in Redis ([`redis_gcra`]) and every instance
//! spends from the same budget; if Redis cannot be reached, a request is judged by the
//! in-process limiter instead (limited per instance rather than not at all, and the
//! API stays up), and `/readyz` reports Redis as down.

pub mod account;
pub mod client_ip;
pub mod redis_gcra;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::auth::Authenticated;
use crate::config::RateLimitConfig;
use crate::error::ApiError;
use redis_gcra::{RedisGcra, Verdict};

/// Which budget a request spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Password checks (logging in, changing one's password): strict, per client
    /// address, against password guessing. Each account has a budget of its own on
    /// top ([`account`]), spent by the handlers that check a password.
    Login,
    /// Search and autocomplete: generous bursts for search-as-you-type.
    Search,
    /// Writes.
    Write,
    /// Everything else an application route serves.
    General,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Login => "login",
            Class::Search => "search",
            Class::Write => "write",
            Class::General => "general",
        }
    }
}

/// What a budget is kept per.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    User(i64),
    Ip(IpAddr),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::User(id) => write!(f, "user:{id}"),
            Key::Ip(ip) => write!(f, "ip:{ip}"),
        }
    }
}

type Limiter = RateLimiter<
    Key,
    governor::state::keyed::DefaultKeyedStateStore<Key>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// One class's quota and its in-process limiter.
struct Budget {
    quota: Quota,
    limiter: Limiter,
}

impl Budget {
    fn new(quota: Quota) -> Self {
        Self {
            quota,
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        }
    }
}

pub struct RateLimits {
    enabled: bool,
    trusted_proxies: Vec<ipnet::IpNet>,
    login: Budget,
    search: Budget,
    write: Budget,
    general: Budget,
    shared: Option<RedisGcra>,
    /// Failed password checks per account, from any address.
    pub accounts: account::AccountThrottle,
}

fn per_second(n: u32, burst_factor: u32) -> Quota {
    let rate = NonZeroU32::new(n.max(1)).expect("at least 1");
    let burst = NonZeroU32::new(n.max(1).saturating_mul(burst_factor)).expect("at least 1");
    Quota::per_second(rate).allow_burst(burst)
}

impl RateLimits {
    /// Limits shared through Redis (`shared`), or kept in this process (`None`).
    pub fn new(
        config: &RateLimitConfig,
        trusted_proxies: &[ipnet::IpNet],
        shared: Option<RedisGcra>,
    ) -> Self {
        let login_rate = NonZeroU32::new(config.login_per_minute.max(1)).expect("at least 1");
        Self {
            enabled: config.enabled,
            trusted_proxies: trusted_proxies.to_vec(),
            // A burst of the whole minute's allowance, then one every 60/n seconds:
            // attempt n+1 within a minute is refused.
            login: Budget::new(Quota::per_minute(login_rate).allow_burst(login_rate)),
            search: Budget::new(per_second(config.search_per_second, 2)),
            write: Budget::new(per_second(config.write_per_second, 2)),
            general: Budget::new(per_second(config.general_per_second, 2)),
            accounts: account::AccountThrottle::new(
                config.enabled,
                config.login_account_per_minute,
                shared.clone(),
            ),
            shared,
        }
    }

    /// Spends one request of `key`'s budget for `class`.
    async fn check(&self, class: Class, key: &Key) -> Verdict {
        let Budget { quota, limiter } = self.budget(class);
        if let Some(shared) = &self.shared {
            let bucket = format!("{}:{key}", class.name());
            let verdict = shared
                .check(
                    &bucket,
                    quota.replenish_interval(),
                    quota.burst_size().get(),
                )
                .await;
            // Otherwise Redis is down (the breaker logs it, once per outage): judge
            // locally.
            if let Ok(verdict) = verdict {
                return verdict;
            }
        }
        match limiter.check_key(key) {
            Ok(snapshot) => {
                let quota = snapshot.quota();
                let remaining = snapshot.remaining_burst_capacity();
                Verdict {
                    allowed: true,
                    remaining,
                    retry_after: Duration::ZERO,
                    // Time until the budget is full again.
                    reset: quota.replenish_interval() * (quota.burst_size().get() - remaining),
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Verdict {
                    allowed: false,
                    remaining: 0,
                    retry_after: wait,
                    reset: wait,
                }
            }
        }
    }

    fn budget(&self, class: Class) -> &Budget {
        match class {
            Class::Login => &self.login,
            Class::Search => &self.search,
            Class::Write => &self.write,
            Class::General => &self.general,
        }
    }

    /// Forgets keys whose budget is full again: governor keeps every key it has seen,
    /// so without this the maps grow with every address that ever called.
    pub fn forget_idle_keys(&self) {
        for budget in [&self.login, &self.search, &self.write, &self.general] {
            budget.limiter.retain_recent();
            budget.limiter.shrink_to_fit();
        }
        self.accounts.forget_idle_keys();
    }

    /// Runs [`Self::forget_idle_keys`] every minute until `shutdown`.
    pub fn spawn_housekeeping(self: &Arc<Self>, shutdown: CancellationToken) {
        let limits = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => limits.forget_idle_keys(),
                }
            }
        });
    }
}

/// The class of a request, or `None` for routes that are never limited (health,
/// metrics scrapes, static files are outside this layer altogether).
pub fn classify(method: &Method, path: &str) -> Option<Class> {
    match path {
        "/healthz" | "/readyz" => None,
        // Changing one's password checks the current one: a guess like a login.
        "/api/auth/login" | "/login" | "/api/auth/password" if method == Method::POST => {
            Some(Class::Login)
        }
        "/api/search" | "/api/autocomplete" => Some(Class::Search),
        _ if crate::auth::csrf::is_unsafe(method) => Some(Class::Write),
        _ => Some(Class::General),
    }
}

fn set_headers(headers: &mut HeaderMap, limit: u32, remaining: u32, reset: Duration) {
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert(
        "ratelimit-reset",
        HeaderValue::from(reset.as_secs_f64().ceil() as u64),
    );
}

/// Set on a request (by the HTTP layer, which knows the transports) that is a frame
/// of an open realtime session rather than a request of its own: a Socket.IO
/// polling request naming its `sid`, pongs included. The handshake that opens a
/// session is limited like any request.
#[derive(Clone, Copy, Debug)]
pub struct Unmetered;

/// The middleware; runs after authentication so it can key by account.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = &state.limits;
    // A transport frame of an open realtime session (marked by the HTTP layer):
    // a 429 there would kill the session. Its sends are limited by the hub instead.
    if request.extensions().get::<Unmetered>().is_some() {
        return next.run(request).await;
    }
    let Some(class) = classify(request.method(), request.uri().path()).filter(|_| limits.enabled)
    else {
        return next.run(request).await;
    };
    let ip = client_ip::client_ip(&request, &limits.trusted_proxies);
    let user = match request.extensions().get::<Authenticated>() {
        Some(Authenticated(Some(identity))) => Some(identity.id()),
        _ => None,
    };
    let key = match (class, user) {
        (Class::Login, _) | (_, None) => Key::Ip(ip),
        (_, Some(id)) => Key::User(id),
    };
    let verdict = limits.check(class, &key).await;
    let limit = limits.budget(class).quota.burst_size().get();
    if verdict.allowed {
        let mut response = next.run(request).await;
        set_headers(
            response.headers_mut(),
            limit,
            verdict.remaining,
            verdict.reset,
        );
        response
    } else {
        crate::auth::audit::rate_limited(
            &crate::auth::audit::Origin::of(request.extensions(), request.headers(), &state),
            user,
            class.name(),
            request.uri().path(),
            verdict.retry_after,
        );
        let mut response = ApiError::TooManyRequests {
            retry_after: verdict.retry_after,
        }
        .into_response();
        set_headers(response.headers_mut(), limit, 0, verdict.retry_after);
        response
    }
}
