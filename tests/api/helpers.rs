//! The test harness: `spawn_app(backend)` starts the real application (`App::build` +
//! `App::serve`) on `127.0.0.1:0` with a database of its own, and gives back a client
//! and the address. PostgreSQL tests run when `TEST_DATABASE_URL` is set (each test in
//! a fresh database, dropped afterwards) and say so when they are skipped.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use switchboard::config::{Secret, Url};
use switchboard::store::Backend;
use switchboard::{App, AppState, Config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs each named `async fn(Backend)` as one test per backend:
/// `module::sqlite::name` and `module::postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(switchboard::store::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::helpers::postgres_available(stringify!($name)) {
                        super::$name(switchboard::store::Backend::Postgres).await
                    }
                }
            )*
        }
    };
}

/// Whether PostgreSQL tests can run. Unset `TEST_DATABASE_URL` skips them, loudly;
/// `.ci/run` sets it, so there a missing server fails the tests instead.
pub fn postgres_available(test: &str) -> bool {
    if std::env::var("TEST_DATABASE_URL").is_ok() {
        return true;
    }
    eprintln!("SKIPPED {test} on PostgreSQL: TEST_DATABASE_URL is not set");
    false
}

// ---- captured logs -------------------------------------------------------------

/// Everything the application logged in this test process, so tests can check that a
/// request id is logged, or that a secret is not.
pub fn logs() -> String {
    let buffer = log_buffer().lock().unwrap();
    String::from_utf8_lossy(&buffer).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(Default::default)
}

struct CaptureWriter;

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,sqlx=warn")
            .with_ansi(false)
            .with_writer(|| CaptureWriter)
            .try_init();
    });
}

// ---- databases -----------------------------------------------------------------

/// A database that exists for one test: a file in a temporary directory, or a fresh
/// PostgreSQL database dropped (even after a failed assertion) when this is dropped.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Self {
                    url,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let admin =
                    std::env::var("TEST_DATABASE_URL").expect("checked by postgres_available");
                let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("TEST_DATABASE_URL must point at a running PostgreSQL");
                sqlx::Executor::execute(
                    &mut conn,
                    sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
                )
                .await
                .expect("create the test database");
                Self {
                    url: with_database(&admin, &name),
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }
}

/// `postgres://u@h:5432/postgres?x=y` + `db` -> `postgres://u@h:5432/db?x=y`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
        // Drop runs inside the test's runtime, which cannot be blocked on: use a
        // thread with a runtime of its own. FORCE ends the app's idle connections.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
                sqlx::Executor::execute(
                    &mut conn,
                    sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
                )
                .await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database: {dropped:?}");
        }
    }
}

// ---- the running app -----------------------------------------------------------

/// The first admin every test app starts with.
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
/// The password `TestApp::member` gives the accounts it creates.
pub const MEMBER_PASSWORD: &str = "quartz lagoon pepper 31";

pub struct TestApp {
    pub address: SocketAddr,
    /// A client logged in as the admin, sending `Origin` like a browser's fetch does.
    pub client: reqwest::Client,
    /// The admin, as `/api/auth/me` shows them.
    pub admin: Value,
    pub state: AppState,
    pub backend: Backend,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    // Last: dropped after the server, so the database outlives its connections.
    pub db: TestDb,
}

/// The app with an empty directory (but for its admin) and default settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// An HTTPS server's settings on SQLite in `dir`, with the test admin.
pub fn tls_config(
    dir: &std::path::Path,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
) -> Config {
    let mut config = Config::defaults();
    config.database.url = Url::new(format!("sqlite://{}", dir.join("tls.db").display()));
    config.database.demo_users = false;
    config.security.admin_email = ADMIN_EMAIL.into();
    config.security.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    config.http.tls_cert = Some(cert);
    config.http.tls_key = Some(key);
    config
}

/// The app with settings changed by `tweak` first.
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    capture_logs();
    let db = TestDb::create(backend).await;
    let mut config = Config::defaults();
    config.database.url = Url::new(&db.url);
    config.database.demo_users = false;
    config.database.max_connections = 4;
    config.security.admin_email = ADMIN_EMAIL.into();
    config.security.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    tweak(&mut config);
    let app = App::build(config).await.expect("the app builds");
    let state = app.state().clone();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));
    let client = login(address, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let admin = client
        .get(format!("http://{address}/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    TestApp {
        address,
        client,
        admin,
        state,
        backend,
        stop: Some(stop),
        server: Some(server),
        db,
    }
}

/// Makes *ring* the process's TLS provider, as the server does: reqwest is built
/// without one (its default would compile aws-lc-rs in beside ring), so every client
/// needs this before it is built.
pub fn install_crypto() {
    // Err means another test installed it first: the same provider either way.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client like a browser's: keeps cookies, follows no redirects (tests look at
/// them), and says which origin its requests come from, as browsers do on writes.
pub fn browser(address: SocketAddr) -> reqwest::Client {
    install_crypto();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", format!("http://{address}").parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("a client")
}

/// A browser-like client logged in through `POST /api/auth/login`.
pub async fn login(address: SocketAddr, email: &str, password: &str) -> reqwest::Client {
    let client = browser(address);
    let response = client
        .post(format!("http://{address}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login request sent");
    assert_eq!(
        response.status(),
        200,
        "login as {email}: {:?}",
        response.text().await
    );
    client
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A browser-like client that has not logged in.
    pub fn anonymous(&self) -> reqwest::Client {
        browser(self.address)
    }

    /// Creates a member (as the admin) who can log in; returns them and their client.
    pub async fn member(&self, name: &str, email: &str) -> (Value, reqwest::Client) {
        let response = self
            .post_json(
                "/api/users",
                &serde_json::json!({"name": name, "email": email, "password": MEMBER_PASSWORD}),
            )
            .await;
        let user = json_with_status(response, 201).await;
        (user, login(self.address, email, MEMBER_PASSWORD).await)
    }

    pub fn admin_id(&self) -> i64 {
        self.admin["id"].as_i64().unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// Creates a user and returns it; panics unless the answer is 201.
    pub async fn create_user(&self, name: &str, email: &str) -> Value {
        let response = self
            .post_json(
                "/api/users",
                &serde_json::json!({"name": name, "email": email}),
            )
            .await;
        assert_eq!(
            response.status(),
            201,
            "creating {email}: {:?}",
            response.text().await
        );
        response.json().await.unwrap()
    }

    /// Stops the server the way a signal would, and waits for `serve` to return.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server
            .take()
            .expect("running")
            .await
            .expect("the server task does not panic")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Follows `Link: rel="next"` from `first` to the end; returns every user seen, and
/// checks that no link leads to an empty page.
pub async fn walk_pages(app: &TestApp, first: &str) -> Vec<Value> {
    let mut users = Vec::new();
    let mut next = Some(first.to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let response = app.get(&path).await;
        next = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned())
            .map(|link| {
                assert!(link.ends_with(r#">; rel="next""#), "{link}");
                link[1..link.find('>').unwrap()].to_owned()
            });
        let page: Vec<Value> = json_with_status(response, 200)
            .await
            .as_array()
            .unwrap()
            .clone();
        assert!(
            pages == 0 || !page.is_empty(),
            "a Link never leads to an empty page"
        );
        users.extend(page);
        pages += 1;
        assert!(pages < 1000, "pagination does not end");
    }
    users
}

pub fn ids(users: &[Value]) -> Vec<i64> {
    users.iter().map(|u| u["id"].as_i64().unwrap()).collect()
}

/// Reads a JSON body, with the status checked first so a failure shows the body.
pub async fn json_with_status(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts `body` is the error envelope with this code, and returns it.
pub fn assert_envelope(body: &Value, code: &str) {
    assert_eq!(body["code"], code, "envelope: {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "no message: {body}"
    );
    assert!(
        body["request_id"].as_str().is_some_and(|e| !e.is_empty()),
        "no request id: {body}"
    );
}
