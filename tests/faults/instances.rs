//! An instance killed (SIGKILL, mid-burst) under two instances on one PostgreSQL and
//! one Redis: its clients reconnect to the other and resume from their last id, sends
//! that reached it are retried on the other with the same `client_id` (as a proxy's
//! next upstream would), the survivor's requests cost what they did, and every
//! subscriber, wherever it ends up, has every id exactly once and in order. The killed
//! instance then starts again and serves at once.

use std::time::{Duration, Instant};

use crate::services::Cluster;
use crate::traffic::{
    Session, all_connected, assert_exactly_once_in_order, median, ms, subscribe_everywhere,
    until_everyone_has, until_live,
};
use crate::{Phase, blocking, until_ready};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_burst() {
    const TEST: &str = "an_instance_killed_mid_burst";
    const BURST: usize = 40;
    let Some(mut cluster) = blocking(|| Cluster::start(TEST, 2)) else {
        return;
    };
    let bases = cluster.urls();
    let (a, b) = (bases[0].clone(), bases[1].clone());
    let room = "instance-killed";
    let session = Session::login(&a).await;
    let subscribers = subscribe_everywhere(&bases, &session, room);
    all_connected(&subscribers).await;

    let normal = Phase::run(&session, std::slice::from_ref(&a), room, 10).await;
    let last = normal.last_id().expect("sends work");
    until_everyone_has(&subscribers, last, Duration::from_secs(10)).await;
    let b_connects: usize = subscribers[4..].iter().map(|s| s.connects()).sum();

    // A burst through both, each send retried on the other instance when its own
    // does not answer; B dies in the middle of it.
    let burst = tokio::spawn({
        let session = session.clone();
        let (a, b) = (a.clone(), b.clone());
        async move {
            let mut ids = Vec::new();
            for i in 0..BURST {
                let client_id = uuid::Uuid::new_v4().to_string();
                let order = if i % 2 == 0 { [&b, &a] } else { [&a, &b] };
                let text = format!("burst {i}");
                // As a client would: the other instance on a failure, and one more
                // round with the same client_id (stored once whatever happens).
                let mut stored = None;
                let mut refused = Vec::new();
                'rounds: for _round in 0..2 {
                    for base in order {
                        match session.send(base, room, &text, &client_id).await.outcome {
                            Ok(id) => {
                                stored = Some(id);
                                break 'rounds;
                            }
                            Err(status) => refused.push((base.to_string(), status)),
                        }
                    }
                }
                let stored = stored
                    .unwrap_or_else(|| panic!("send {i} stored by neither instance: {refused:?}"));
                ids.push(stored);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ids
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    blocking(|| cluster.instances[1].kill());
    let killed = Instant::now();
    // Meanwhile: A's requests, and probes through A until B's subscribers (now on A)
    // get them live.
    let only_a = std::slice::from_ref(&a);
    let (during, (live, _)) = futures_util::future::join(
        Phase::run(&session, only_a, room, 10),
        until_live(
            &session,
            only_a,
            &subscribers,
            room,
            killed,
            Duration::from_secs(1),
        ),
    )
    .await;
    assert!(
        subscribers[4..].iter().map(|s| s.connects()).sum::<usize>() > b_connects,
        "B's subscribers reconnected"
    );
    let ids = burst.await.unwrap();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), BURST, "each send stored once: {ids:?}");
    let (_, probe) = until_live(
        &session,
        only_a,
        &subscribers,
        room,
        Instant::now(),
        Duration::from_secs(1),
    )
    .await;
    assert_exactly_once_in_order(&subscribers, probe);

    // B again, on its address: ready and delivering.
    let restarted = Instant::now();
    blocking(|| cluster.instances[1].restart());
    let ready = until_ready(&bases, restarted, Duration::from_secs(20)).await;
    let (live_b, probe) = until_live(
        &session,
        std::slice::from_ref(&b),
        &subscribers,
        room,
        restarted,
        Duration::from_secs(1),
    )
    .await;
    assert_exactly_once_in_order(&subscribers, probe);

    eprintln!(
        "{TEST}: {} subscribers, {probe} ids each exactly once in order\n  \
         A before: {}\n  A after B was killed: {}\n  \
         B's subscribers live on A {} after the kill; B restarted: ready in {}, \
         delivering in {}",
        subscribers.len(),
        normal.summary(),
        during.summary(),
        ms(live),
        ms(ready),
        ms(live_b),
    );
    for (what, before, after) in [
        ("GET /api/users", normal.get_times(), during.get_times()),
        ("POST /api/send", normal.send_times(), during.send_times()),
    ] {
        // A now carries B's clients and the burst too: generous.
        let bound = median(&before) * 3 + Duration::from_millis(250);
        assert!(
            median(&after) < bound,
            "{what} on A: median {:?} after B died, {:?} before",
            median(&after),
            median(&before)
        );
    }
    assert!(live < Duration::from_secs(10), "live again after {live:?}");
}
