//! A circuit breaker for a dependency that may go away (Redis): while it is down,
//! callers skip it at once instead of each waiting for a connect or a timeout.
//!
//! Closed, every call goes through with a short timeout. The first failure (or
//! timeout) opens it: calls are refused without touching the dependency, except one
//! probe per `probe_every`; the first probe that succeeds closes it again. One warning
//! when it opens and one line when it closes, naming the dependency, so an outage
//! logs two lines however many requests it spans.

use std::fmt::Display;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Why a call through the breaker gave no answer.
#[derive(Debug)]
pub enum Refused<E> {
    /// The breaker is open: the dependency was not asked.
    Open,
    /// It did not answer within the timeout.
    Timeout,
    /// It answered with an error.
    Failed(E),
}

impl<E: Display> Display for Refused<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Open => write!(f, "skipped while the dependency is down"),
            Refused::Timeout => write!(f, "timed out"),
            Refused::Failed(error) => error.fmt(f),
        }
    }
}

pub struct Breaker {
    name: &'static str,
    timeout: Duration,
    probe_every: Duration,
    /// `Some(next probe)` while open.
    open: Mutex<Option<Instant>>,
}

impl Breaker {
    pub fn new(name: &'static str, timeout: Duration, probe_every: Duration) -> Self {
        Self {
            name,
            timeout,
            probe_every,
            open: Mutex::new(None),
        }
    }

    /// For Redis: 250 ms per call, a probe every second.
    pub fn redis() -> Self {
        Self::new("redis", Duration::from_millis(250), Duration::from_secs(1))
    }

    /// Whether the dependency is currently considered down.
    pub fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `call` unless the breaker is open (then only as the interval's probe).
    pub async fn call<T, E: Display>(
        &self,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Refused<E>> {
        {
            let mut open = self.lock();
            if let Some(next_probe) = *open {
                let now = Instant::now();
                if now < next_probe {
                    return Err(Refused::Open);
                }
                // This call is the probe; the others keep skipping until the next one.
                *open = Some(now + self.probe_every);
            }
        }
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Refused::Failed(error)),
            Err(_) => Err(Refused::Timeout),
        };
        let mut open = self.lock();
        match (&result, open.is_some()) {
            (Ok(_), true) => {
                *open = None;
                tracing::warn!(dependency = self.name, "{} is reachable again", self.name);
            }
            (Err(error), false) => {
                *open = Some(Instant::now() + self.probe_every);
                tracing::warn!(
                    dependency = self.name,
                    %error,
                    "{} is unreachable; skipping it, probing every {:?}",
                    self.name,
                    self.probe_every
                );
            }
            _ => {}
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn breaker() -> Breaker {
        Breaker::new("test", Duration::from_millis(250), Duration::from_secs(1))
    }

    async fn ok(calls: &AtomicU32) -> Result<(), &'static str> {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn fail(calls: &AtomicU32) -> Result<(), &'static str> {
        calls.fetch_add(1, Ordering::SeqCst);
        Err("down")
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_opens_it_and_calls_skip_the_dependency() {
        let breaker = breaker();
        let calls = AtomicU32::new(0);
        assert!(breaker.call(ok(&calls)).await.is_ok());
        assert!(matches!(
            breaker.call(fail(&calls)).await,
            Err(Refused::Failed("down"))
        ));
        assert!(breaker.is_open());
        for _ in 0..10 {
            assert!(matches!(breaker.call(ok(&calls)).await, Err(Refused::Open)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "open: not asked");
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_counts_as_a_failure() {
        let breaker = breaker();
        let started = Instant::now();
        let hung = breaker.call(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<(), &str>(())
        });
        assert!(matches!(hung.await, Err(Refused::Timeout)));
        assert_eq!(started.elapsed(), Duration::from_millis(250));
        assert!(breaker.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_per_interval_and_a_good_probe_closes_it() {
        let breaker = breaker();
        let calls = AtomicU32::new(0);
        let _ = breaker.call(fail(&calls)).await;
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(matches!(
            breaker.call(fail(&calls)).await,
            Err(Refused::Open)
        ));
        tokio::time::advance(Duration::from_millis(1)).await;
        // The probe fails: still open, and the next probe is a full interval away.
        assert!(matches!(
            breaker.call(fail(&calls)).await,
            Err(Refused::Failed(_))
        ));
        assert!(matches!(breaker.call(ok(&calls)).await, Err(Refused::Open)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(breaker.call(ok(&calls)).await.is_ok());
        assert!(!breaker.is_open());
        assert!(breaker.call(ok(&calls)).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
