//! Redis outages: killed (connections reset, then a new process on the same port)
//! and paused (connections open, nothing answers). Requests and sends keep working
//! at their usual cost (the breaker skips Redis), `/readyz` says 503 at once, and
//! after Redis is back every subscriber on every instance gets what it missed,
//! exactly once, and live delivery across instances resumes.

use std::time::{Duration, Instant};

use crate::services::Cluster;
use crate::traffic::{
    Session, all_connected, assert_exactly_once_in_order, median, ms, subscribe_everywhere,
    until_everyone_has, until_live,
};
use crate::{Phase, blocking, readyz, until_ready};

#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill,
    Pause,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_then_restarted() {
    redis_outage("redis_killed_then_restarted", Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_then_resumed() {
    redis_outage("redis_paused_then_resumed", Fault::Pause).await;
}

async fn redis_outage(test: &str, fault: Fault) {
    let Some(mut cluster) = blocking(|| Cluster::start(test, 2)) else {
        return;
    };
    let bases = cluster.urls();
    let room = "redis-outage";
    let session = Session::login(&bases[0]).await;
    let subscribers = subscribe_everywhere(&bases, &session, room);
    all_connected(&subscribers).await;

    let normal = Phase::run(&session, &bases, room, 10).await;
    let last = normal.last_id().expect("sends work");
    until_everyone_has(&subscribers, last, Duration::from_secs(10)).await;

    match fault {
        Fault::Kill => blocking(|| cluster.redis.kill()),
        Fault::Pause => cluster.redis.pause(),
    }
    // Through both instances, so that each has subscribers missing the other's.
    let during = Phase::run(&session, &bases, room, 20).await;
    for (outcome, _) in &during.sends {
        assert!(
            outcome.is_ok(),
            "a send failed while Redis was down: {outcome:?}"
        );
    }
    for (status, _) in &during.gets {
        assert_eq!(*status, 200, "GET /api/users while Redis was down");
    }
    let (status, took) = readyz(&bases[0]).await;
    assert_eq!(status, 503, "/readyz while Redis is down");
    assert!(took < Duration::from_secs(1), "/readyz took {took:?}");

    let restored = Instant::now();
    match fault {
        Fault::Kill => blocking(|| cluster.redis.restart()),
        Fault::Pause => cluster.redis.resume(),
    }
    // Both clocks run from the same moment.
    let ((live, probe), ready) = futures_util::future::join(
        until_live(
            &session,
            &bases,
            &subscribers,
            room,
            restored,
            Duration::from_secs(1),
        ),
        until_ready(&bases, restored, Duration::from_secs(10)),
    )
    .await;
    assert_exactly_once_in_order(&subscribers, probe);

    eprintln!(
        "{test}: {} subscribers (4 transports x 2 instances), {probe} ids each exactly once in order\n  \
         normal: {}\n  during ({fault:?}): {}\n  /readyz during: 503 in {}\n  \
         after Redis was back: ready in {}, every missed message delivered and delivery live in {}",
        subscribers.len(),
        normal.summary(),
        during.summary(),
        ms(took),
        ms(ready),
        ms(live),
    );
    // The medians, generously bounded: waiting on Redis (250 ms per call without the
    // breaker) would show in every request.
    for (what, before, outage) in [
        ("GET /api/users", normal.get_times(), during.get_times()),
        ("POST /api/send", normal.send_times(), during.send_times()),
    ] {
        let bound = median(&before) * 3 + Duration::from_millis(100);
        assert!(
            median(&outage) < bound,
            "{what}: median {:?} during the outage, {:?} before",
            median(&outage),
            median(&before)
        );
    }
    assert!(live < Duration::from_secs(10), "live again after {live:?}");
}
