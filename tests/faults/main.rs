//! The fault suite (issue 18): real `switchboard` processes (the binary cargo builds)
//! on a PostgreSQL cluster and a `redis-server` of each test's own (Debian's binaries,
//! temporary directories, free ports), whose dependencies are killed (SIGKILL), paused
//! (SIGSTOP, then SIGCONT) and restarted, and whose instances are killed, while
//! subscribers on every transport and on every instance count what they get.
//!
//! Each test checks that every subscriber got every id exactly once and in order,
//! measures how long delivery takes to go live again, and that requests during the
//! outage cost about what they cost before (Redis: the breaker) or fail fast with 503
//! (PostgreSQL: the short acquire timeout); it prints its figures (`--nocapture`).
//! Timing bounds judge medians and are generous: the machine is shared.
//!
//! Without the binaries each test prints `SKIPPED ...` and passes; `.ci/run` sets
//! `TEST_FAULTS_REQUIRED`, so in CI a missing binary fails instead. Every process and
//! directory a test makes is removed by a `Drop` guard, also when it fails.

// A panic is how a test reports: unwrap freely. (clippy.toml's allow-unwrap-in-tests
// does not reach the helpers these tests share, nor every async test.)
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod instances;
mod postgres;
mod redis;
mod services;
mod traffic;

use std::time::{Duration, Instant};

use traffic::{Session, median, ms};

/// Blocking work (starting or stopping a process) off the runtime's worker.
pub fn blocking<T>(work: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(work)
}

/// Request costs and outcomes over one phase of a test.
#[derive(Default)]
pub struct Phase {
    /// `GET /api/users`: how long each took, and its status.
    pub gets: Vec<(u16, Duration)>,
    /// `POST /api/send`: how long each took, and the id (or the status).
    pub sends: Vec<(Result<i64, u16>, Duration)>,
}

impl Phase {
    /// `rounds` times, on each instance in turn: one `GET /api/users` and one
    /// `POST /api/send` to `room`.
    pub async fn run(session: &Session, bases: &[String], room: &str, rounds: usize) -> Self {
        let mut phase = Self::default();
        for round in 0..rounds {
            let base = &bases[round % bases.len()];
            phase
                .gets
                .push(session.get(&format!("{base}/api/users")).await);
            let sent = session
                .send(
                    base,
                    room,
                    &format!("round {round}"),
                    &uuid::Uuid::new_v4().to_string(),
                )
                .await;
            phase.sends.push((sent.outcome, sent.took));
        }
        phase
    }

    /// The same requests as [`Phase::run`], all at once (each may wait for a timeout:
    /// in sequence they would take that many times as long).
    pub async fn concurrent(
        session: &Session,
        bases: &[String],
        room: &str,
        rounds: usize,
    ) -> Self {
        let gets = (0..rounds).map(|round| {
            let url = format!("{}/api/users", bases[round % bases.len()]);
            async move { session.get(&url).await }
        });
        let sends = (0..rounds).map(|round| async move {
            let base = &bases[round % bases.len()];
            let client_id = uuid::Uuid::new_v4().to_string();
            let sent = session
                .send(base, room, &format!("round {round}"), &client_id)
                .await;
            (sent.outcome, sent.took)
        });
        let (gets, sends) = futures_util::future::join(
            futures_util::future::join_all(gets),
            futures_util::future::join_all(sends),
        )
        .await;
        Self { gets, sends }
    }

    pub fn get_times(&self) -> Vec<Duration> {
        self.gets.iter().map(|(_, t)| *t).collect()
    }

    pub fn send_times(&self) -> Vec<Duration> {
        self.sends.iter().map(|(_, t)| *t).collect()
    }

    pub fn last_id(&self) -> Option<i64> {
        self.sends
            .iter()
            .filter_map(|(r, _)| r.as_ref().ok().copied())
            .max()
    }

    pub fn summary(&self) -> String {
        let (gets, sends) = (self.get_times(), self.send_times());
        format!(
            "GET /api/users median {} (max {}), POST /api/send median {} (max {})",
            ms(median(&gets)),
            ms(*gets.iter().max().unwrap()),
            ms(median(&sends)),
            ms(*sends.iter().max().unwrap()),
        )
    }
}

/// An anonymous `GET /readyz`: (status, how long it took).
pub async fn readyz(base: &str) -> (u16, Duration) {
    probe(base, "/readyz").await
}

/// An anonymous GET of a probe (`/readyz`, `/healthz`): (status, how long it took).
pub async fn probe(base: &str, path: &str) -> (u16, Duration) {
    let client = traffic::client();
    let started = Instant::now();
    let status = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    (status, started.elapsed())
}

/// Waits until every instance answers `/readyz` with 200; returns when.
pub async fn until_ready(bases: &[String], since: Instant, within: Duration) -> Duration {
    loop {
        let mut ready = true;
        for base in bases {
            ready &= readyz(base).await.0 == 200;
        }
        if ready {
            return since.elapsed();
        }
        assert!(since.elapsed() < within, "not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
