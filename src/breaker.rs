//! A circuit breaker for a dependency that may go away (Redis): while it is down,
//! callers skip it at once instead of each waiting for a connect or a timeout.
//!
//! Closed, every call goes through with a short timeout. The first failure (or
//! timeout) opens it: calls are refused without touching the dependency. A background
//! task ([`Breaker::spawn_probing`]) probes it every `probe_every` meanwhile, so no
//! request pays for a probe; the first probe that succeeds closes it. One warning
//! when it opens and one line when it closes, naming the dependency, so an outage
//! logs two lines however many requests it spans.

use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};
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
    /// `Some(since when)` while open.
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
        crate::sync::lock(&self.open)
    }

    /// Runs `call` unless the breaker is open.
    pub async fn call<T, E: Display>(
        &self,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Refused<E>> {
        if self.is_open() {
            return Err(Refused::Open);
        }
        self.probe(call).await
    }

    /// Runs `call` whether open or not (with the timeout), and opens or closes the
    /// breaker by its outcome.
    pub async fn probe<T, E: Display>(
        &self,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Refused<E>> {
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Refused::Failed(error)),
            Err(_) => Err(Refused::Timeout),
        };
        let mut open = self.lock();
        match (&result, *open) {
            (Ok(_), Some(since)) => {
                *open = None;
                tracing::warn!(
                    dependency = self.name,
                    "{} is reachable again after {:?}",
                    self.name,
                    since.elapsed()
                );
            }
            (Err(error), None) => {
                *open = Some(Instant::now());
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

    /// Every `probe_every` while open, runs `probe` until `shutdown`.
    pub fn spawn_probing<F, Fut, T, E>(
        self: &Arc<Self>,
        probe: F,
        shutdown: tokio_util::sync::CancellationToken,
    ) where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send,
        T: Send,
        E: Display + Send,
    {
        let breaker = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(breaker.probe_every) => {}
                }
                if breaker.is_open() {
                    let _ = breaker.probe(probe()).await;
                }
            }
        });
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
    async fn the_background_probe_closes_it_once_the_dependency_answers() {
        let breaker = Arc::new(breaker());
        let calls = Arc::new(AtomicU32::new(0));
        let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let _ = breaker.call(fail(&calls)).await;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (probes, probing_up) = (Arc::new(AtomicU32::new(0)), up.clone());
        let counted = probes.clone();
        breaker.spawn_probing(
            move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let up = probing_up.load(Ordering::SeqCst);
                async move { if up { Ok(()) } else { Err("down") } }
            },
            shutdown.clone(),
        );
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_eq!(probes.load(Ordering::SeqCst), 3, "one probe a second");
        assert!(breaker.is_open(), "failed probes keep it open");
        assert!(matches!(breaker.call(ok(&calls)).await, Err(Refused::Open)));
        up.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!breaker.is_open(), "a good probe closes it");
        assert!(breaker.call(ok(&calls)).await.is_ok());
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(probes.load(Ordering::SeqCst), 4, "closed: no probes");
        shutdown.cancel();
    }
}
