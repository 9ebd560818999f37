//! Replays stream: 100 WebSocket clients join a room of 10,000 messages of 4 KB from
//! the beginning and never read. Each costs the server at most one replay page and
//! its bounded queue (a replay held whole would be 40 MB of text each), and a second
//! wave after the first has gone does not grow the server further. Alone in a test
//! process of its own, because resident memory is per process.

// A panic is how a test reports: unwrap freely. (clippy.toml's allow-unwrap-in-tests
// does not reach the helpers these tests share, nor every async test.)
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use futures_util::StreamExt;
use serde_json::json;
use switchboard::hub::message::{Author, NewMessage};
use switchboard::store::Backend;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app_with};

const MESSAGES: usize = 10_000;
const CLIENTS: usize = 100;
const ROOM: &str = "backlog";

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Resident memory of this test process (the server runs inside it), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Waits until resident memory stops moving (five samples 200 ms apart within
/// 512 KiB of each other), at most 60 s; returns it.
async fn settled_rss() -> u64 {
    let started = Instant::now();
    let mut samples = vec![rss_kib()];
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        samples.push(rss_kib());
        let recent = &samples[samples.len().saturating_sub(5)..];
        let (low, high) = (recent.iter().min().unwrap(), recent.iter().max().unwrap());
        if recent.len() == 5 && high - low < 512 {
            return *high;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "memory did not settle: {samples:?}"
        );
    }
}

async fn session_cookie(app: &TestApp) -> String {
    helpers::install_crypto();
    let response = reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .header("origin", app.url(""))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A WebSocket on a socket with a small receive buffer (so the kernel does not
/// read megabytes on the client's behalf), joined to the room from 0.
async fn join_from_zero(app: &TestApp, cookie: &str) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let stream = socket.connect(app.address).await.unwrap();
    let mut request = format!("ws://{}/ws", app.address)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    let join = json!({"type": "join", "room": ROOM, "since": 0});
    ws.send(Frame::text(join.to_string())).await.unwrap();
    ws
}

/// Opens the clients and lets them sit; returns them with the server's growth.
async fn wave(app: &TestApp, cookie: &str, before: u64) -> (Vec<Ws>, u64) {
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(join_from_zero(app, cookie).await);
    }
    let after = settled_rss().await;
    (clients, after.saturating_sub(before))
}

async fn all_gone(app: &TestApp) {
    let started = Instant::now();
    while app.state.hub.stats.connections.load(Ordering::Relaxed) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "connections did not end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_join_from_zero_and_do_not_read_cost_one_page_each() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.realtime.max_message_chars = 4_000;
        config.rate.enabled = false;
        config.realtime.connections_per_user = 1_000;
        config.realtime.connections_per_ip = 1_000;
    })
    .await;
    let store = app.state.store.clone();
    for i in 0..MESSAGES {
        store
            .append_message(&NewMessage {
                room: ROOM.into(),
                author: Author::system(),
                text: format!("{i:05} {}", "x".repeat(3_994)),
                event: None,
                client_id: None,
            })
            .await
            .unwrap();
    }
    let cookie = session_cookie(&app).await;

    // Warm-up: one client reads the whole replay, so the database's caches and the
    // allocator have seen the work once before anything is measured.
    let mut reader = join_from_zero(&app, &cookie).await;
    let mut last = 0;
    while last < MESSAGES as i64 {
        let frame = tokio::time::timeout(Duration::from_secs(30), reader.next())
            .await
            .expect("the replay flows")
            .unwrap()
            .unwrap();
        if let Frame::Text(text) = frame {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            if value["type"] == "message" {
                assert_eq!(value["id"], last + 1, "in order, nothing skipped");
                last += 1;
            }
        }
    }
    drop(reader);
    all_gone(&app).await;
    let baseline = settled_rss().await;

    let (first, grown) = wave(&app, &cookie, baseline).await;
    let per_client = grown / CLIENTS as u64;
    eprintln!(
        "replay memory: baseline {baseline} KiB; first wave of {CLIENTS}: +{grown} KiB ({per_client} KiB per client)"
    );
    assert!(
        per_client < 2 * 1024,
        "each stuck client costs {per_client} KiB (bound: 2 MiB)"
    );
    drop(first);
    all_gone(&app).await;
    let after_first = settled_rss().await;

    // Later waves reuse what the first freed. The allocator keeps some of it spread
    // over its arenas, so the second peak may sit a little above the first; from
    // then on the peaks must stay level.
    let mut peaks = vec![baseline + grown];
    let logged = helpers::logs().len();
    for _ in 0..2 {
        let (clients, _) = wave(&app, &cookie, baseline).await;
        peaks.push(settled_rss().await);
        drop(clients);
        all_gone(&app).await;
    }
    eprintln!(
        "replay memory: after the first wave left {after_first} KiB; peaks of waves 1-3: {peaks:?} KiB; the test's captured log grew by {} KiB meanwhile",
        (helpers::logs().len() - logged) / 1024
    );
    // A wave that left anything per client behind (a page, its queue) would add at
    // least a first wave's worth (100 clients x a page); what the allocator keeps
    // spread over its arenas adds a few MiB at most (seen: +3.5 to +4.3 MiB per wave
    // on a busy machine, under 1 MiB with MALLOC_ARENA_MAX=1). So each later wave
    // may add at most half of what the first one cost.
    let allowance = (grown / 2).max(2 * 1024);
    assert!(
        peaks[2] <= peaks[1] + allowance,
        "the third wave grew the server further: {peaks:?} KiB (allowance {allowance} KiB)"
    );
    assert!(
        peaks[1] <= peaks[0] + grown / 2,
        "the second wave grew the server by half a wave or more: {peaks:?} KiB"
    );
}
