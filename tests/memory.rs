//! A client that stops reading, with 40 MB sent past it: the server cuts it off and
//! its memory stays flat. Alone in a test process of its own, because resident memory
//! is per process and the API suite runs many apps side by side.

// A panic is how a test reports: unwrap freely. (clippy.toml's allow-unwrap-in-tests
// does not reach the helpers these tests share, nor every async test.)
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

#[allow(dead_code)]
#[path = "api/clients.rs"]
mod clients;

use std::time::Duration;

use futures_util::StreamExt;
use switchboard::store::Backend;
use tokio_tungstenite::tungstenite::Message as Frame;

use clients::*;
use helpers::{json_with_status, spawn_app_with};

/// Resident memory of this test process (the server runs inside it).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_client_is_cut_off_and_memory_stays_bounded() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.realtime.queue = 64;
        config.realtime.max_message_chars = 4_000;
    })
    .await;
    let cookie = admin_cookie(&app).await;
    // The stuck client (Stu) joins, then never reads again.
    let (_, stu) = member_cookie(&app, "Stu").await;
    let mut stuck = ws_in_room(&app, &stu, "busy", None).await;
    let mut reader = ws_in_room(&app, &cookie, "busy", None).await;

    // 10,000 messages of 4,000 characters: 40 MB through the hub. Whatever the
    // stuck client would hold if its backlog grew shows up as growth between the
    // first half (allocator warm-up included) and the second.
    let hub = app.state.hub.clone();
    let author = switchboard::hub::message::Author {
        id: app.admin_id(),
        name: "Admin".into(),
    };
    let send_range = |range: std::ops::Range<usize>| {
        let hub = hub.clone();
        let author = author.clone();
        tokio::spawn(async move {
            for i in range {
                let text = format!("bulk {i} {}", "x".repeat(3_980));
                hub.send(&author, "busy", &text, None, None).await.unwrap();
            }
        })
    };
    let mut halfway = 0;
    for (half, range) in [(0, 0..5_000), (1, 5_000..10_000)] {
        let writer = send_range(range.clone());
        for expected in range {
            let message = next_of(&mut reader, "message").await;
            assert_eq!(
                message["id"],
                expected as i64 + 1,
                "the reader gets every message in order"
            );
        }
        writer.await.unwrap();
        if half == 0 {
            halfway = rss_kib();
        }
    }
    let grown = rss_kib().saturating_sub(halfway);
    let slow = app
        .state
        .hub
        .stats
        .slow_consumers
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(slow >= 1, "the stuck connection was cut off");
    assert!(
        grown < 12 * 1024,
        "RSS grew by {grown} KiB over the second 20 MB"
    );

    // When it reads again it finds what its socket buffers held, then the end (the
    // close frame, `slow_consumer`, when there was room to write it).
    let (received, reason) = tokio::time::timeout(Duration::from_secs(60), async {
        let mut received = 0;
        while let Some(frame) = stuck.next().await {
            match frame {
                Ok(Frame::Text(_)) => received += 1,
                Ok(Frame::Close(close)) => return (received, close.map(|c| c.reason.to_string())),
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        (received, None)
    })
    .await
    .expect("the stuck connection ends");
    assert!(
        received < 10_000,
        "it was cut off, not served everything ({received})"
    );
    assert!(reason.is_none_or(|r| r == "slow_consumer"));
    // Cut off means gone: Stu has left the room's presence.
    let presence = json_with_status(app.get("/api/rooms/busy/presence").await, 200).await;
    assert_eq!(presence["count"], 1, "{presence}");
    assert_eq!(presence["users"][0]["name"], "Admin");
    let mut resumed = ws_in_room(&app, &stu, "busy", Some(9_990)).await;
    for expected in 9_991..=10_000 {
        assert_eq!(next_of(&mut resumed, "message").await["id"], expected);
    }
}
