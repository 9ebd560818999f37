//! Clients of the realtime transports for the tests: a WebSocket (tokio-tungstenite),
//! an SSE reader (eventsource-stream over reqwest) and plain HTTP for long polling
//! and sends, each logged in with a real session cookie like a browser.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use switchboard::store::Backend;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message as Frame};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD, TestApp, install_crypto, spawn_app_with,
};

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The app with the realtime and HTTP rate limits out of the way (tests that send
/// many messages; the limits have tests of their own).
pub(crate) async fn spawn_unlimited(backend: Backend) -> TestApp {
    spawn_app_with(backend, |config| {
        config.rate.enabled = false;
        config.realtime.send_per_second = 100_000;
    })
    .await
}

/// `sb_session=...; csrftoken=...` for an account, from a real login.
pub(crate) async fn cookie(app: &TestApp, email: &str, password: &str) -> String {
    install_crypto();
    let response = reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .header("origin", app.url(""))
        .json(&json!({"email": email, "password": password}))
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

pub(crate) async fn admin_cookie(app: &TestApp) -> String {
    cookie(app, ADMIN_EMAIL, ADMIN_PASSWORD).await
}

/// A member and their cookie.
pub(crate) async fn member_cookie(app: &TestApp, name: &str) -> (Value, String) {
    let email = format!("{}@example.com", name.to_lowercase());
    let (user, _) = app.member(name, &email).await;
    (user, cookie(app, &email, MEMBER_PASSWORD).await)
}

pub(crate) async fn try_ws(
    app: &TestApp,
    path: &str,
    headers: &[(&str, String)],
) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("ws://{}{path}", app.address)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

/// A browser's upgrade: the session cookie and this server's Origin.
pub(crate) async fn open_ws(app: &TestApp, path: &str, cookie: &str) -> Ws {
    try_ws(
        app,
        path,
        &[("cookie", cookie.to_owned()), ("origin", app.url(""))],
    )
    .await
    .expect("the upgrade succeeds")
}

/// The next text frame, parsed; fails the test after `WAIT`.
pub(crate) async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a valid frame");
        match frame {
            Frame::Text(text) => return serde_json::from_str(&text).expect("JSON frames"),
            Frame::Close(close) => panic!("closed: {close:?}"),
            _ => continue,
        }
    }
}

/// Frames until one of type `kind` (others are skipped).
pub(crate) async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = next_frame(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// Waits for the plain-text chat's next line.
pub(crate) async fn next_text(ws: &mut Ws) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("valid");
        if let Frame::Text(text) = frame {
            return text.to_string();
        }
    }
}

pub(crate) async fn send_frame(ws: &mut Ws, frame: Value) {
    ws.send(Frame::text(frame.to_string())).await.unwrap();
}

/// Opens a JSON WebSocket and joins `room` (from `since` when given); returns it
/// after the `presence` answer.
pub(crate) async fn ws_in_room(app: &TestApp, cookie: &str, room: &str, since: Option<i64>) -> Ws {
    let mut ws = open_ws(app, "/ws", cookie).await;
    assert_eq!(next_frame(&mut ws).await["type"], "welcome");
    let mut join = json!({"type": "join", "room": room});
    if let Some(since) = since {
        join["since"] = json!(since);
    }
    send_frame(&mut ws, join).await;
    let presence = next_of(&mut ws, "presence").await;
    assert_eq!(presence["room"], room);
    ws
}

pub(crate) type Sse = std::pin::Pin<Box<dyn Stream<Item = eventsource_stream::Event> + Send>>;

pub(crate) async fn open_sse(
    app: &TestApp,
    path: &str,
    cookie: &str,
    last_event_id: Option<&str>,
) -> Sse {
    install_crypto();
    let mut request = reqwest::Client::new()
        .get(app.url(path))
        .header("cookie", cookie)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    Box::pin(
        response
            .bytes_stream()
            .eventsource()
            .map(|event| event.expect("a well-formed event")),
    )
}

/// The next unnamed (message) event: (id, data).
pub(crate) async fn next_sse_message(sse: &mut Sse) -> (String, Value) {
    loop {
        let event = tokio::time::timeout(WAIT, sse.next())
            .await
            .expect("an event in time")
            .expect("the stream is open");
        if event.event == "message" && !event.data.is_empty() {
            return (event.id, serde_json::from_str(&event.data).unwrap());
        }
    }
}

pub(crate) async fn next_sse_named(sse: &mut Sse, name: &str) -> Value {
    loop {
        let event = tokio::time::timeout(WAIT, sse.next())
            .await
            .expect("an event in time")
            .expect("the stream is open");
        if event.event == name {
            return serde_json::from_str(&event.data).unwrap();
        }
    }
}

pub(crate) async fn post_send(app: &TestApp, cookie: &str, body: Value) -> reqwest::Response {
    post_send_on(&reqwest::Client::new(), app, cookie, body).await
}

/// `post_send` on a client made beforehand. Making one takes a while (it loads the
/// system's root certificates): many sends started together on clients made as they
/// go would each connect, then wait for the others' clients before sending, longer
/// than the server's header timeout allows a silent connection.
pub(crate) async fn post_send_on(
    client: &reqwest::Client,
    app: &TestApp,
    cookie: &str,
    body: Value,
) -> reqwest::Response {
    let csrf = cookie
        .split("; ")
        .find_map(|c| c.strip_prefix("csrftoken="))
        .unwrap_or_default()
        .to_owned();
    client
        .post(app.url("/api/send"))
        .header("cookie", cookie)
        .header("x-csrftoken", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn poll(app: &TestApp, cookie: &str, query: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(&format!("/api/poll?{query}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

pub(crate) fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

// ---- credentials ---------------------------------------------------------------

/// How a client proves who it is.
#[derive(Clone)]
pub(crate) enum Auth {
    /// A browser's session cookie (`sb_session=..; csrftoken=..`).
    Cookie(String),
    /// An API token.
    Bearer(String),
}

impl Auth {
    pub(crate) fn headers(&self, app: &TestApp) -> Vec<(&'static str, String)> {
        match self {
            Auth::Cookie(cookie) => vec![("cookie", cookie.clone()), ("origin", app.url(""))],
            Auth::Bearer(token) => vec![("authorization", format!("Bearer {token}"))],
        }
    }

    pub(crate) fn get(&self, app: &TestApp, path: &str) -> reqwest::RequestBuilder {
        install_crypto();
        let mut request = reqwest::Client::new().get(app.url(path));
        for (name, value) in self.headers(app) {
            request = request.header(name, value);
        }
        request
    }
}

// ---- Socket.IO (Engine.IO 4 framing over a WebSocket) ---------------------------

pub(crate) async fn try_sio(app: &TestApp, auth: &Auth) -> Result<Ws, String> {
    let mut ws = try_ws(
        app,
        "/socket.io/?EIO=4&transport=websocket",
        &auth.headers(app),
    )
    .await
    .map_err(|e| e.to_string())?;
    let open = sio_packet(&mut ws)
        .await
        .expect("the Engine.IO open packet");
    assert!(open.starts_with('0'), "{open}");
    let connect = match auth {
        Auth::Bearer(token) => format!("40{}", json!({ "token": token })),
        Auth::Cookie(_) => "40".to_owned(),
    };
    ws.send(Frame::text(connect)).await.unwrap();
    loop {
        let packet = sio_packet(&mut ws).await.expect("a CONNECT answer");
        if packet.starts_with("40") {
            return Ok(ws);
        }
        if packet.starts_with("44") {
            return Err(packet);
        }
    }
}

pub(crate) async fn open_sio(app: &TestApp, auth: &Auth) -> Ws {
    let mut sio = try_sio(app, auth).await.expect("Socket.IO connects");
    let (event, data) = sio_event(&mut sio).await.expect("the welcome");
    assert_eq!(
        (event.as_str(), &data["data"]),
        ("message", &json!("Connected to server"))
    );
    sio
}

/// The next Engine.IO packet's text (pings answered), or `None` once closed.
pub(crate) async fn sio_packet(ws: &mut Ws) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a Socket.IO packet in time");
        match frame {
            Some(Ok(Frame::Text(text))) if text.as_str() == "2" => {
                let _ = ws.send(Frame::text("3")).await;
            }
            Some(Ok(Frame::Text(text))) => return Some(text.to_string()),
            Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// The next event (`42[name, data]`), or `None` once disconnected.
pub(crate) async fn sio_event(ws: &mut Ws) -> Option<(String, Value)> {
    loop {
        let packet = sio_packet(ws).await?;
        if packet == "41" {
            return None;
        }
        if let Some(body) = packet.strip_prefix("42") {
            let mut parts: Vec<Value> = serde_json::from_str(body).unwrap();
            let data = if parts.len() > 1 {
                parts.remove(1)
            } else {
                Value::Null
            };
            return Some((parts[0].as_str().unwrap().to_owned(), data));
        }
    }
}

pub(crate) async fn sio_emit(ws: &mut Ws, event: &str, data: Value) {
    let _ = ws
        .send(Frame::text(format!("42{}", json!([event, data]))))
        .await;
}
