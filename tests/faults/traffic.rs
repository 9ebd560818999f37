//! What a fault test does to the instances: it logs in, keeps subscribers of one room
//! on every transport (WebSocket, SSE, long polling, Socket.IO), each recording every
//! id it gets and resuming from its last one after any disconnect (on the next
//! instance, as a load balancer would send it), sends messages through the REST API,
//! and times requests.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::services::{ADMIN_EMAIL, ADMIN_PASSWORD};

/// Every request of the test has this bound, so a hang fails the test instead of
/// stalling it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The client for requests, made once: making one loads the system's root
/// certificates, which would count in every timing.
pub fn client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
        })
        .clone()
}

/// The client for SSE streams: no overall timeout (a stream lasts).
fn streaming_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::new()
        })
        .clone()
}

/// The admin's session (the cookie header and its CSRF token), valid on every
/// instance (sessions are in PostgreSQL).
#[derive(Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    http: reqwest::Client,
}

impl Session {
    pub async fn login(base: &str) -> Self {
        let http = client();
        let response = http
            .post(format!("{base}/api/auth/login"))
            .header("origin", base)
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "login");
        let pairs: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect();
        let csrf = pairs
            .iter()
            .find_map(|p| p.strip_prefix("csrftoken="))
            .unwrap()
            .to_owned();
        Self {
            cookie: pairs.join("; "),
            csrf,
            http,
        }
    }

    /// A GET with the session: (status, how long it took). A transport error (the
    /// instance is gone) is status 0.
    pub async fn get(&self, url: &str) -> (u16, Duration) {
        let started = Instant::now();
        let status = match self
            .http
            .get(url)
            .header("cookie", &self.cookie)
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                status
            }
            Err(_) => 0,
        };
        (status, started.elapsed())
    }

    /// `POST /api/send` through `base`: the stored id, or the status (0: no answer).
    pub async fn send(&self, base: &str, room: &str, text: &str, client_id: &str) -> Sent {
        let started = Instant::now();
        let result = self
            .http
            .post(format!("{base}/api/send"))
            .header("cookie", &self.cookie)
            .header("x-csrftoken", &self.csrf)
            .json(&json!({"room": room, "text": text, "client_id": client_id}))
            .send()
            .await;
        let outcome = match result {
            Ok(response) if response.status() == 201 => {
                let message: Value = response.json().await.unwrap();
                Ok(message["id"].as_i64().unwrap())
            }
            Ok(response) => Err(response.status().as_u16()),
            Err(_) => Err(0),
        };
        Sent {
            outcome,
            took: started.elapsed(),
        }
    }
}

pub struct Sent {
    pub outcome: Result<i64, u16>,
    pub took: Duration,
}

pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// Milliseconds, one decimal, for the printed figures.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

// ---- subscribers -------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
pub enum Transport {
    WebSocket,
    Sse,
    LongPoll,
    SocketIo,
}

pub const TRANSPORTS: [Transport; 4] = [
    Transport::WebSocket,
    Transport::Sse,
    Transport::LongPoll,
    Transport::SocketIo,
];

#[derive(Default)]
struct Received {
    /// Every id, in arrival order, with when it arrived.
    ids: Vec<(i64, Instant)>,
    connects: usize,
    /// What ended each connection but the current one.
    drops: Vec<String>,
}

/// One client of one room, kept connected by a task of its own: after any
/// disconnect it reconnects (to the next instance in its list) from the last id it
/// got, as the browser's clients do.
pub struct Subscriber {
    pub name: String,
    received: Arc<Mutex<Received>>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// `bases`: where it connects, in order (the first is its home instance).
    pub fn spawn(transport: Transport, bases: Vec<String>, session: &Session, room: &str) -> Self {
        let name = format!("{transport:?} on {}", bases[0]);
        let received = Arc::new(Mutex::new(Received::default()));
        let task = tokio::spawn({
            let received = received.clone();
            let session = session.clone();
            let room = room.to_owned();
            async move {
                let mut turn = 0;
                loop {
                    let base = &bases[turn % bases.len()];
                    let since = received.lock().unwrap().ids.last().map_or(0, |(id, _)| *id);
                    let ended = match transport {
                        Transport::WebSocket => ws(base, &session, &room, since, &received).await,
                        Transport::Sse => sse(base, &session, &room, since, &received).await,
                        Transport::LongPoll => poll(base, &session, &room, since, &received).await,
                        Transport::SocketIo => {
                            socket_io(base, &session, &room, since, &received).await
                        }
                    };
                    received
                        .lock()
                        .unwrap()
                        .drops
                        .push(format!("{base}: {ended}"));
                    // Whatever ended it, the next try goes to the next instance.
                    turn += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self {
            name,
            received,
            task,
        }
    }

    pub fn ids(&self) -> Vec<i64> {
        self.received
            .lock()
            .unwrap()
            .ids
            .iter()
            .map(|(id, _)| *id)
            .collect()
    }

    /// When id `id` arrived here.
    pub fn arrival(&self, id: i64) -> Option<Instant> {
        let received = self.received.lock().unwrap();
        received
            .ids
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, at)| *at)
    }

    pub fn connects(&self) -> usize {
        self.received.lock().unwrap().connects
    }

    fn describe(&self) -> String {
        let received = self.received.lock().unwrap();
        format!(
            "{}: {} connects, drops {:?}",
            self.name, received.connects, received.drops
        )
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Records `id`; order and duplicates are judged at the end, over everything.
fn record(received: &Mutex<Received>, id: i64) {
    received.lock().unwrap().ids.push((id, Instant::now()));
}

fn connected(received: &Mutex<Received>) {
    received.lock().unwrap().connects += 1;
}

fn ws_url(base: &str, path: &str) -> String {
    format!("{}{path}", base.replacen("http://", "ws://", 1))
}

async fn open_ws(
    base: &str,
    session: &Session,
    path: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
> {
    let mut request = ws_url(base, path).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", session.cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", base.parse().unwrap());
    let connect = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(error)) => Err(format!("connect: {error}")),
        Err(_) => Err("connect timed out".into()),
    }
}

/// `/ws`: join with `since`, then every `message` frame of the room.
async fn ws(
    base: &str,
    session: &Session,
    room: &str,
    since: i64,
    received: &Mutex<Received>,
) -> String {
    let mut socket = match open_ws(base, session, "/ws").await {
        Ok(socket) => socket,
        Err(error) => return error,
    };
    let join = json!({"type": "join", "room": room, "since": since}).to_string();
    if socket.send(Frame::text(join)).await.is_err() {
        return "send failed".into();
    }
    let mut counted = false;
    while let Some(frame) = socket.next().await {
        let text = match frame {
            Ok(Frame::Text(text)) => text,
            Ok(Frame::Close(close)) => return format!("closed: {close:?}"),
            Ok(_) => continue,
            Err(error) => return format!("error: {error}"),
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        match frame["type"].as_str() {
            Some("presence") if !counted => {
                counted = true;
                connected(received);
            }
            Some("message") if frame["room"] == room => {
                record(received, frame["id"].as_i64().unwrap())
            }
            Some("reset") => panic!("{base}: a reset from {since}: {frame}"),
            _ => {}
        }
    }
    "ended".into()
}

/// `GET /api/rooms/{room}/events?since=N`.
async fn sse(
    base: &str,
    session: &Session,
    room: &str,
    since: i64,
    received: &Mutex<Received>,
) -> String {
    let response = streaming_client()
        .get(format!("{base}/api/rooms/{room}/events?since={since}"))
        .header("cookie", &session.cookie)
        .header("accept", "text/event-stream")
        .send();
    let response = match tokio::time::timeout(Duration::from_secs(5), response).await {
        Ok(Ok(response)) if response.status() == 200 => response,
        Ok(Ok(response)) => return format!("status {}", response.status()),
        Ok(Err(error)) => return format!("connect: {error}"),
        Err(_) => return "connect timed out".into(),
    };
    connected(received);
    let mut events = response.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => return format!("error: {error}"),
        };
        match event.event.as_str() {
            "message" if !event.data.is_empty() => {
                let message: Value = serde_json::from_str(&event.data).unwrap();
                record(received, message["id"].as_i64().unwrap());
            }
            "reset" => panic!("{base}: a reset from {since}"),
            _ => {}
        }
    }
    "ended".into()
}

/// `GET /api/poll?room=R&last_id=N&timeout=5`, over and over.
async fn poll(
    base: &str,
    session: &Session,
    room: &str,
    since: i64,
    received: &Mutex<Received>,
) -> String {
    let http = client();
    let mut last = since;
    let mut counted = false;
    loop {
        let response = http
            .get(format!(
                "{base}/api/poll?room={room}&last_id={last}&timeout=5"
            ))
            .header("cookie", &session.cookie)
            .send()
            .await;
        let response = match response {
            Ok(response) if response.status() == 200 => response,
            Ok(response) => return format!("status {}", response.status()),
            Err(error) => return format!("error: {error}"),
        };
        if !counted {
            counted = true;
            connected(received);
        }
        let messages: Vec<Value> = match response.json().await {
            Ok(messages) => messages,
            Err(error) => return format!("body: {error}"),
        };
        for message in messages {
            last = message["id"].as_i64().unwrap();
            record(received, last);
        }
    }
}

/// Socket.IO (Engine.IO 4 over a WebSocket): CONNECT, `join_room {room, since}`,
/// then every `message` event of the room that has an id.
async fn socket_io(
    base: &str,
    session: &Session,
    room: &str,
    since: i64,
    received: &Mutex<Received>,
) -> String {
    let mut socket = match open_ws(base, session, "/socket.io/?EIO=4&transport=websocket").await {
        Ok(socket) => socket,
        Err(error) => return error,
    };
    let mut joined = false;
    while let Some(frame) = socket.next().await {
        let text = match frame {
            Ok(Frame::Text(text)) => text.to_string(),
            Ok(Frame::Close(close)) => return format!("closed: {close:?}"),
            Ok(_) => continue,
            Err(error) => return format!("error: {error}"),
        };
        if text.starts_with('0') {
            let _ = socket.send(Frame::text("40")).await;
        } else if text == "2" {
            let _ = socket.send(Frame::text("3")).await;
        } else if text.starts_with("40") && !joined {
            joined = true;
            let join = format!("42{}", json!(["join_room", {"room": room, "since": since}]));
            if socket.send(Frame::text(join)).await.is_err() {
                return "send failed".into();
            }
            connected(received);
        } else if text.starts_with("44") {
            return format!("refused: {text}");
        } else if text == "41" {
            return "disconnected".into();
        } else if let Some(body) = text.strip_prefix("42") {
            let event: Vec<Value> = serde_json::from_str(body).unwrap();
            match event[0].as_str() {
                Some("message") if event[1]["room"] == room && event[1]["id"].is_i64() => {
                    record(received, event[1]["id"].as_i64().unwrap());
                }
                Some("reset") => panic!("{base}: a reset from {since}: {body}"),
                _ => {}
            }
        }
    }
    "ended".into()
}

/// One subscriber per transport on each instance (failing over to the others).
pub fn subscribe_everywhere(bases: &[String], session: &Session, room: &str) -> Vec<Subscriber> {
    let mut subscribers = Vec::new();
    for (i, _) in bases.iter().enumerate() {
        let mut order: Vec<String> = bases[i..].to_vec();
        order.extend_from_slice(&bases[..i]);
        for transport in TRANSPORTS {
            subscribers.push(Subscriber::spawn(transport, order.clone(), session, room));
        }
    }
    subscribers
}

/// Waits until every subscriber has connected at least once.
pub async fn all_connected(subscribers: &[Subscriber]) {
    let started = Instant::now();
    while subscribers.iter().any(|s| s.connects() == 0) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not every subscriber connected: {:?}",
            subscribers
                .iter()
                .map(Subscriber::describe)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to `within`) until every subscriber has `id`; returns when the last one
/// got it.
pub async fn until_everyone_has(subscribers: &[Subscriber], id: i64, within: Duration) -> Instant {
    let started = Instant::now();
    loop {
        let arrivals: Option<Vec<Instant>> = subscribers.iter().map(|s| s.arrival(id)).collect();
        if let Some(arrivals) = arrivals {
            return arrivals.into_iter().max().unwrap();
        }
        assert!(
            started.elapsed() < within,
            "id {id} did not reach every subscriber within {within:?}: {:#?}",
            subscribers
                .iter()
                .map(|s| format!("{} (last {:?})", s.describe(), s.ids().last()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The fault suite's promise: every subscriber got 1..=`last`, each id exactly
/// once, in order.
pub fn assert_exactly_once_in_order(subscribers: &[Subscriber], last: i64) {
    for subscriber in subscribers {
        let ids = subscriber.ids();
        let expected: Vec<i64> = (1..=last).collect();
        if ids != expected {
            let mut seen = std::collections::HashSet::new();
            let repeated: Vec<i64> = ids.iter().copied().filter(|id| !seen.insert(*id)).collect();
            let missing: Vec<i64> = expected
                .iter()
                .copied()
                .filter(|id| !seen.contains(id))
                .collect();
            panic!(
                "{}: not 1..={last} exactly once in order: repeated {repeated:?}, missing {missing:?}, \
                 got {ids:?}",
                subscriber.describe()
            );
        }
    }
}

/// Sends a probe through each instance in turn every 100 ms until one reaches every
/// subscriber within `live` of being sent: delivery is live again. Returns the time
/// from `since` to that probe's arrival, and the id it got.
pub async fn until_live(
    session: &Session,
    bases: &[String],
    subscribers: &[Subscriber],
    room: &str,
    since: Instant,
    live: Duration,
) -> (Duration, i64) {
    let mut last = 0;
    for probe in 0.. {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "delivery not live within 30 s (last probe {last})"
        );
        let base = &bases[probe % bases.len()];
        let sent_at = Instant::now();
        let sent = session
            .send(
                base,
                room,
                &format!("probe {probe}"),
                &uuid::Uuid::new_v4().to_string(),
            )
            .await;
        let Ok(id) = sent.outcome else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        last = id;
        loop {
            let arrivals: Option<Vec<Instant>> =
                subscribers.iter().map(|s| s.arrival(id)).collect();
            if let Some(arrivals) = arrivals {
                let at = arrivals.into_iter().max().unwrap();
                if at.duration_since(sent_at) <= live {
                    return (at.duration_since(since), id);
                }
                break;
            }
            if sent_at.elapsed() > live {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}
