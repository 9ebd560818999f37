//! Switchboard: one binary serving a user directory API, a browser UI and a realtime
//! hub. `App::build(config)` assembles everything; `App::serve` runs it on a listener
//! the caller bound, which is how `main` and the tests start the same server.
//!
//! Reading order: [`config`] -> [`App`] (here) -> [`http`] (routes and middleware) ->
//! [`directory`] (the user API) -> [`store`] (all SQL) -> [`error`] (the envelope).

pub mod account;
pub mod auth;
pub mod batch;
pub mod breaker;
pub mod classic;
pub mod cli;
pub mod config;
pub mod directory;
pub mod edge;
pub mod error;
pub mod http;
pub mod hub;
pub mod limits;
pub mod openapi;
pub mod ops;
pub mod server;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod timefmt;
pub mod tls;
pub mod transport;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use auth::AuthState;
pub use config::Config;
use limits::RateLimits;
use store::Store;

/// What every handler can reach. Every middleware layer and `State` extractor clones
/// it on every request, so a clone is one reference count ([`Shared`] behind an
/// `Arc`) rather than one per field (a `CancellationToken` clone even takes a lock).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<AuthState>,
    pub limits: Arc<RateLimits>,
    /// The realtime hub: rooms, the message log, presence and fan-out.
    pub hub: Arc<hub::Hub>,
    /// The realtime routes' state ([`transport::Realtime`]): the hub without the store.
    pub realtime: transport::Realtime,
    /// The Redis connection when `--redis-url` is given (it reconnects by itself).
    pub redis: Option<redis::aio::ConnectionManager>,
    /// Every call to Redis goes through it: while Redis is down, requests skip it.
    pub redis_breaker: Arc<breaker::Breaker>,
    /// Cancelled when the server starts shutting down: long-lived tasks (WebSocket,
    /// SSE, long polls) listen to it, because axum's graceful shutdown does not end them.
    pub shutdown: CancellationToken,
    pub started: Instant,
}

pub struct App {
    state: AppState,
    router: Router,
}

impl App {
    /// Connects the store, applies migrations, makes sure an admin exists, adds the demo
    /// users to an empty directory, and assembles the routes.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Installed before the first request so no request goes uncounted.
        http::metrics::handle();
        let store = store::connect_with(
            config.database.url.expose(),
            config.database.max_connections,
            std::time::Duration::from_millis(config.database.acquire_timeout_ms),
        )
        .await
        .with_context(|| format!("cannot open the database {}", config.database.url))?;
        store.migrate().await?;
        // Demo users first: they are for an empty directory, and the admin is not demo.
        if config.database.demo_users {
            directory::add_demo_users(store.as_ref()).await?;
        }
        auth::bootstrap::ensure_admin(store.as_ref(), &config).await?;
        let auth = AuthState {
            csrf_key: store
                .shared_secret("csrf_key", &auth::random_token(32))
                .await?
                .into_bytes(),
            dummy_hash: auth::password::hash(auth::password::random_password()).await?,
            secure_cookies: config.http.tls(),
            session_idle_secs: (config.security.session_idle_minutes * 60) as i64,
            session_max_secs: (config.security.session_max_hours * 3600) as i64,
            allowed_origins: config.http.allowed_origins.clone(),
            password_policy: auth::password::Policy::new(config.security.password_min_chars),
        };
        let shutdown = CancellationToken::new();
        let redis = match &config.database.redis_url {
            Some(url) => Some(connect_redis(url.expose()).await?),
            None => None,
        };
        let redis_breaker = Arc::new(breaker::Breaker::redis());
        if let Some(connection) = &redis {
            let connection = connection.clone();
            redis_breaker.spawn_probing(
                move || {
                    let mut connection = connection.clone();
                    async move {
                        redis::cmd("PING")
                            .query_async::<String>(&mut connection)
                            .await
                    }
                },
                shutdown.clone(),
            );
        }
        let shared_limits = redis.clone().map(|connection| {
            limits::redis_gcra::RedisGcra::new(
                connection,
                redis_breaker.clone(),
                &config.database.redis_prefix,
            )
        });
        let limits = Arc::new(RateLimits::new(
            &config.rate,
            &config.http.trusted_proxies,
            shared_limits,
        ));
        limits.spawn_housekeeping(shutdown.clone());
        let auth = Arc::new(auth);
        auth::session::spawn_pruning(store.clone(), auth.clone(), shutdown.clone());
        // Several instances (a Redis): fan-out goes through Redis pub/sub.
        let broker: Arc<dyn hub::Broker> = match (&config.database.redis_url, &redis) {
            (Some(url), Some(publisher)) => Arc::new(hub::redis_broker::RedisBroker::start(
                redis::Client::open(url.expose())?,
                publisher.clone(),
                redis_breaker.clone(),
                &config.database.redis_prefix,
                shutdown.clone(),
            )),
            _ => Arc::new(hub::InProcessBroker::default()),
        };
        let hub = hub::Hub::start(
            store.clone(),
            broker,
            config.realtime.clone(),
            shutdown.clone(),
        );
        let started = Instant::now();
        let realtime = transport::Realtime::new(transport::RealtimeShared {
            hub: hub.clone(),
            shutdown: shutdown.clone(),
            trusted_proxies: config.http.trusted_proxies.clone(),
            auth: auth.clone(),
            tokens: auth::token::TokenResolver::new(store.clone()),
            started,
            heartbeat: transport::heartbeat(transport::HEARTBEAT, shutdown.clone()),
        });
        let state = AppState(Arc::new(Shared {
            config: Arc::new(config),
            hub,
            realtime,
            store,
            auth,
            limits,
            redis,
            redis_breaker,
            shutdown,
            started,
        }));
        let router = http::router(state.clone());
        Ok(Self { state, router })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting, tells
    /// long-lived tasks to finish, waits for open requests (up to the configured
    /// grace period) and closes the store. Speaks HTTPS (HTTP/1.1 and HTTP/2 by ALPN)
    /// when the config names a certificate, plain HTTP (HTTP/1.1, h2c) otherwise.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let App { state, router } = self;
        // Outside the router: routing must see `/api/users` for `/api/users/`.
        let app = NormalizePathLayer::trim_trailing_slash().layer(router);
        let token = state.shutdown.clone();
        let grace = state.config.http.shutdown_grace();
        let edge = edge::Edge::new(&state.config.edge);
        let signalled = async move {
            shutdown.await;
            tracing::info!("shutting down");
            token.cancel();
        };
        let result = match (&state.config.http.tls_cert, &state.config.http.tls_key) {
            (Some(cert), Some(key)) => {
                let tls = tls::config(cert, key).await?;
                let handle = axum_server::Handle::new();
                let stopper = handle.clone();
                tokio::spawn(async move {
                    signalled.await;
                    stopper.graceful_shutdown(Some(grace));
                });
                let service = axum::ServiceExt::<Request>::into_make_service_with_connect_info::<
                    SocketAddr,
                >(app);
                let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
                    .handshake_timeout(edge.header_timeout())
                    .acceptor(edge::EdgeAcceptor::new(edge.clone()));
                let mut server = axum_server::from_tcp(listener.into_std()?)?.acceptor(acceptor);
                // The edge's deadlines replace hyper's header timeout (see
                // `edge::deadline`); HTTP/2 pings as on the plain listener.
                let (interval, timeout) = edge.http2_keep_alive();
                server
                    .http_builder()
                    .http2()
                    .keep_alive_interval(interval)
                    .keep_alive_timeout(timeout);
                server.handle(handle).serve(service).await
            }
            _ => {
                // Our own loop rather than axum::serve: 8 KiB less per connection
                // (see `server`).
                let server = server::serve(listener, app, edge, signalled);
                let stopped = state.shutdown.clone();
                // The grace period counts from the shutdown signal, not from start.
                tokio::select! {
                    result = server => result,
                    _ = async { stopped.cancelled().await; tokio::time::sleep(grace).await } => {
                        tracing::warn!(?grace, "connections still open after the grace period; closing them");
                        Ok(())
                    }
                }
            }
        };
        state.store.close().await;
        result
    }
}

/// Connects to Redis, failing start-up when it cannot be reached: a misconfigured
/// cluster should not come up quietly limiting per instance.
async fn connect_redis(url: &str) -> anyhow::Result<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url)
        .with_context(|| format!("--redis-url {}", config::redact_url(url)))?;
    // Short timeouts: the rate limiter asks Redis on every request, so a Redis that
    // hangs must cost each request little before the in-process fallback answers.
    let settings = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
        .set_response_timeout(Some(std::time::Duration::from_millis(500)))
        .set_number_of_retries(2);
    redis::aio::ConnectionManager::new_with_config(client, settings)
        .await
        .with_context(|| format!("connecting to Redis at {}", config::redact_url(url)))
}
