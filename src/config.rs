//! The command line: every setting is a flag with a `SWITCHBOARD_*` environment
//! variable, parsed once into [`Config`], whose groups (HTTP, edge, database,
//! security, rate limits, realtime, logging) are what each part of the server takes;
//! the `///` comments are the `--help` text. An explicit flag beats its variable, a
//! bad value stops the start with the flag's name, and tests build a `Config` from
//! [`Config::defaults`], which reads no environment.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about = "A self-hosted server for interactive web apps: a user directory API, a browser UI and a realtime hub.",
    long_about = None,
    // `switchboard --port 1 user list` is a mistake: the server's flags go with
    // `serve` (or no command), each other command has its own.
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// The server's settings when no command is given (`switchboard` = `switchboard serve`).
    #[command(flatten)]
    pub config: Config,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve(Box<Config>),
    /// Apply the database migrations, then exit.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        log: LogConfig,
    },
    /// Add deterministic synthetic users (for demos and benchmarks), then exit.
    Seed {
        /// How many users: user N is the same on every run, and users that already
        /// exist are skipped, so seeding twice adds nothing.
        #[arg(long, default_value_t = 1000)]
        users: u64,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        log: LogConfig,
    },
    /// Manage accounts.
    User {
        #[command(flatten)]
        store: StoreArgs,
        /// Shortest password accepted for `--password-stdin` (8-128, as the server's).
        #[arg(
            long,
            env = "SWITCHBOARD_PASSWORD_MIN_CHARS",
            default_value_t = crate::auth::password::DEFAULT_MIN_CHARS,
            value_parser = password_min_chars,
            global = true
        )]
        password_min_chars: usize,
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage API tokens.
    Token {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Copy the SQLite database to PATH while the server keeps running (SQLite's
    /// online backup API: one consistent snapshot). On PostgreSQL, use pg_dump.
    Backup {
        /// Where to write the copy; it must not exist yet.
        path: std::path::PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

impl Cli {
    /// What to run: no command is `serve` with the flags given.
    pub fn into_command(self) -> Command {
        self.command
            .unwrap_or_else(|| Command::Serve(Box::new(self.config)))
    }
}

impl Command {
    /// How this command logs (the administrative ones without `--log` use the
    /// defaults: `RUST_LOG`, else `info`).
    pub fn log(&self) -> LogConfig {
        match self {
            Command::Serve(config) => config.log.clone(),
            Command::Migrate { log, .. } | Command::Seed { log, .. } => log.clone(),
            Command::User { .. } | Command::Token { .. } | Command::Backup { .. } => {
                LogConfig::default()
            }
        }
    }
}

/// The database an administrative command opens (`global`, so it may follow a nested
/// command: `switchboard user add --database-url ...`).
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Database")]
pub struct StoreArgs {
    /// Database: `sqlite://path/to/file.db` or `postgres://user:pass@host/db`, as
    /// the server's `--database-url`.
    #[arg(
        id = "database_url",
        value_name = "URL",
        long = "database-url",
        env = "SWITCHBOARD_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        value_parser = database_url,
        global = true
    )]
    pub database_url: Url,
}

/// Where the data is when nothing says otherwise.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/switchboard.db";

#[derive(Subcommand, Debug, Clone)]
pub enum UserAction {
    /// Add an account that can log in. Prints a generated password unless
    /// `--password-stdin` is given.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["admin", "member"], default_value = "member")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an account's password (ends all its sessions). Prints a generated password
    /// unless `--password-stdin` is given.
    Passwd {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts that can log in, with their roles.
    List,
}

#[derive(Subcommand, Debug, Clone)]
pub enum TokenAction {
    /// Create an API token for an account and print it (the only time it is shown).
    Create {
        /// Whose token.
        #[arg(long)]
        email: String,
        /// What it is for, e.g. "ci" or "prometheus".
        #[arg(long)]
        name: String,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_days: Option<i64>,
    },
    /// Revoke a token by its id (see `GET /api/tokens`).
    Revoke {
        #[arg(long)]
        id: i64,
    },
}

/// Every setting of the server, in groups (`switchboard --help` lists them by group).
/// The groups are what the parts take: the hub gets [`RealtimeConfig`], the limiter
/// [`RateLimitConfig`], and so on. Secrets are [`Secret`]s, so `Debug` can be derived
/// and still never prints one.
#[derive(Args, Clone, Debug)]
pub struct Config {
    #[command(flatten)]
    pub http: HttpConfig,
    /// Connection cap and timeouts at the HTTP edge (slow clients).
    #[command(flatten)]
    pub edge: EdgeConfig,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub security: SecurityConfig,
    #[command(flatten)]
    pub rate: RateLimitConfig,
    #[command(flatten)]
    pub realtime: RealtimeConfig,
    #[command(flatten)]
    pub log: LogConfig,
}

/// Where the server listens and what it accepts from a request.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "HTTP")]
pub struct HttpConfig {
    /// Address and port to listen on.
    #[arg(long, env = "SWITCHBOARD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Largest request body accepted, in bytes (larger ones get 413).
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", default_value_t = 1024 * 1024, value_parser = at_least_one)]
    pub max_body_bytes: usize,

    /// Seconds an API request may take before it is answered 503.
    #[arg(
        long = "request-timeout-secs",
        env = "SWITCHBOARD_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub request_timeout_secs: u64,

    /// Seconds to wait for open requests and connections at shutdown.
    #[arg(
        long = "shutdown-grace-secs",
        env = "SWITCHBOARD_SHUTDOWN_GRACE_SECS",
        default_value_t = 10
    )]
    pub shutdown_grace_secs: u64,

    /// Origins (scheme://host[:port]) besides the server's own that may send
    /// cookie-authenticated writes and open WebSockets, comma-separated. Needed behind a
    /// proxy that rewrites `Host`.
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Origins allowed to call the API from other sites' pages (CORS), comma-separated.
    /// None by default.
    #[arg(long, env = "SWITCHBOARD_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Proxies (IP addresses or CIDR ranges, comma-separated) whose `X-Forwarded-For`
    /// is believed. Without this the client's address is the socket's peer.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// PEM certificate chain: serve HTTPS (HTTP/1.1 and HTTP/2) instead of HTTP.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The database, and Redis for running several instances.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Database")]
pub struct DatabaseConfig {
    /// Database: `sqlite://path/to/file.db` (created when missing) or
    /// `postgres://user:pass@host/db` (the database must exist).
    #[arg(
        id = "database_url",
        value_name = "URL",
        long = "database-url",
        env = "SWITCHBOARD_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        value_parser = database_url
    )]
    pub url: Url,

    /// Most database connections the server opens (SQLite: readers; one writer is extra).
    #[arg(
        id = "db_max_connections",
        value_name = "N",
        long = "db-max-connections",
        env = "SWITCHBOARD_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_connections: u32,

    /// How long a request waits for a PostgreSQL connection from the pool before it
    /// gets 503, in milliseconds: short, so a database outage fails requests fast
    /// instead of hanging them (they recover by themselves when it is back).
    #[arg(
        long = "db-acquire-timeout-ms",
        env = "SWITCHBOARD_DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 2000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub acquire_timeout_ms: u64,

    /// Add the seed's three demo users (Alice, Bob and Charlie) when the directory is empty.
    #[arg(
        long,
        env = "SWITCHBOARD_DEMO_USERS",
        default_value_t = true,
        action = ArgAction::Set
    )]
    pub demo_users: bool,

    /// Redis (`redis://host:6379`), for running several instances: rate limits are
    /// then shared by all of them. Without it everything stays in this process.
    #[arg(long = "redis-url", env = "SWITCHBOARD_REDIS_URL")]
    pub redis_url: Option<Url>,

    /// Prefix of every Redis key this server writes, so several deployments (or test
    /// runs) can share one Redis.
    #[arg(
        long = "redis-prefix",
        env = "SWITCHBOARD_REDIS_PREFIX",
        default_value = "switchboard:"
    )]
    pub redis_prefix: String,
}

/// Accounts, sessions and the first admin.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Security")]
pub struct SecurityConfig {
    /// Email of the admin account created on first start when no admin exists. Its
    /// password is `SWITCHBOARD_ADMIN_PASSWORD` when set (an environment variable only,
    /// so it never shows in `ps`), otherwise a random one printed once to the console.
    #[arg(
        long,
        env = "SWITCHBOARD_ADMIN_EMAIL",
        default_value = "admin@example.com"
    )]
    pub admin_email: String,

    /// That admin's password: read from `SWITCHBOARD_ADMIN_PASSWORD` by
    /// [`Command::from_process`], never a flag (a flag shows in the process list).
    #[arg(skip)]
    pub admin_password: Option<Secret>,

    /// Shortest password accepted (8-128; see README, "Security").
    #[arg(
        long,
        env = "SWITCHBOARD_PASSWORD_MIN_CHARS",
        default_value_t = crate::auth::password::DEFAULT_MIN_CHARS,
        value_parser = password_min_chars
    )]
    pub password_min_chars: usize,

    /// Minutes a session may be unused before it expires.
    #[arg(long, env = "SWITCHBOARD_SESSION_IDLE_MINUTES", default_value_t = 7 * 24 * 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub session_idle_minutes: u64,

    /// Hours after login when a session expires, however active.
    #[arg(long, env = "SWITCHBOARD_SESSION_MAX_HOURS", default_value_t = 30 * 24, value_parser = clap::value_parser!(u64).range(1..))]
    pub session_max_hours: u64,
}

/// Requests allowed per client address and per account.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Rate limits")]
pub struct RateLimitConfig {
    /// Login attempts allowed per minute from one client address.
    #[arg(
        long = "rate-login-per-minute",
        env = "SWITCHBOARD_RATE_LOGIN_PER_MINUTE",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub login_per_minute: u32,

    /// Failed password checks allowed per minute for one account, from any address
    /// (a burst of this many, then one every 60/n seconds; a right password costs
    /// nothing).
    #[arg(
        long = "rate-login-account-per-minute",
        env = "SWITCHBOARD_RATE_LOGIN_ACCOUNT_PER_MINUTE",
        default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub login_account_per_minute: u32,

    /// Search and autocomplete requests per second per account (bursts of twice this
    /// pass, so live search while typing never trips it).
    #[arg(
        long = "rate-search-per-second",
        env = "SWITCHBOARD_RATE_SEARCH_PER_SECOND",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub search_per_second: u32,

    /// Writes (POST, PUT, PATCH, DELETE) per second per account (bursts of twice this
    /// pass).
    #[arg(
        long = "rate-write-per-second",
        env = "SWITCHBOARD_RATE_WRITE_PER_SECOND",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub write_per_second: u32,

    /// Other requests per second per account (bursts of twice this pass).
    #[arg(
        long = "rate-general-per-second",
        env = "SWITCHBOARD_RATE_GENERAL_PER_SECOND",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub general_per_second: u32,

    /// Turns rate limiting off (benchmarks; never in production).
    #[arg(id = "rate_limits",
        value_name = "BOOL", long = "rate-limits", env = "SWITCHBOARD_RATE_LIMITS", default_value_t = true, action = ArgAction::Set)]
    pub enabled: bool,
}

/// The realtime hub: chat history, message size, and what one connection or
/// account may hold. This group is what [`crate::hub::Hub`] takes.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Realtime")]
pub struct RealtimeConfig {
    /// Messages kept per chat room; older ones are deleted (a client resuming from
    /// before them is told to reload instead of getting a partial replay).
    #[arg(
        long = "history-max-messages",
        env = "SWITCHBOARD_HISTORY_MAX_MESSAGES",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub history_max_messages: u32,

    /// Days a chat message is kept.
    #[arg(
        long = "history-max-days",
        env = "SWITCHBOARD_HISTORY_MAX_DAYS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub history_max_days: u32,

    /// Longest chat message, in characters.
    #[arg(
        long = "max-message-chars",
        env = "SWITCHBOARD_MAX_MESSAGE_CHARS",
        default_value_t = 4_000,
        value_parser = at_least_one
    )]
    pub max_message_chars: usize,

    /// Chat messages per second one realtime connection may send (bursts of twice
    /// this pass).
    #[arg(
        long = "realtime-send-per-second",
        env = "SWITCHBOARD_REALTIME_SEND_PER_SECOND",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub send_per_second: u32,

    /// Realtime connections (WebSocket, Socket.IO, SSE, long polls) one account may
    /// hold open at once.
    #[arg(
        long = "realtime-connections-per-user",
        env = "SWITCHBOARD_REALTIME_CONNECTIONS_PER_USER",
        default_value_t = 32,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub connections_per_user: u32,

    /// Realtime connections one client address may hold open at once.
    #[arg(
        long = "realtime-connections-per-ip",
        env = "SWITCHBOARD_REALTIME_CONNECTIONS_PER_IP",
        default_value_t = 256,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub connections_per_ip: u32,

    /// Deliveries queued per realtime connection; a client that falls further
    /// behind is disconnected (`slow_consumer`) and resumes from its position.
    #[arg(
        long = "realtime-queue",
        env = "SWITCHBOARD_REALTIME_QUEUE",
        default_value_t = 256,
        value_parser = at_least_one
    )]
    pub queue: usize,

    /// Rooms one realtime connection may follow at once (a WebSocket, a Socket.IO
    /// socket, one `/api/events?rooms=` stream); joining one more is refused with
    /// `too_many_rooms` until the client leaves one.
    #[arg(
        long = "realtime-rooms-per-connection",
        env = "SWITCHBOARD_REALTIME_ROOMS_PER_CONNECTION",
        default_value_t = 50,
        value_parser = at_least_one
    )]
    pub rooms_per_connection: usize,
}

/// What the server logs and how.
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Logging")]
pub struct LogConfig {
    /// Log filter, in `tracing` syntax (e.g. `info`, `warn,switchboard=debug`).
    /// Default: `RUST_LOG` when that is set, otherwise `info`; this flag (or its
    /// variable) wins over `RUST_LOG`.
    #[arg(id = "log",
        value_name = "FILTER", long = "log", env = "SWITCHBOARD_LOG", value_parser = parse_log_filter)]
    pub filter: Option<String>,

    /// Log line format.
    #[arg(long = "log-format", env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The HTTP edge: how many connections may be open and how long one may take to
/// send a request or sit idle (see `crate::edge`).
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Connections")]
pub struct EdgeConfig {
    /// Seconds a client has to send a request's line and headers, counted from the
    /// connection's opening (the TLS handshake included) or from the first byte of a
    /// later request; a connection that is slower, or silent, is closed.
    #[arg(
        long,
        env = "SWITCHBOARD_HEADER_TIMEOUT_SECS",
        value_parser = clap::value_parser!(u64).range(1..),
        default_value_t = 5
    )]
    pub header_timeout_secs: u64,

    /// Seconds a kept-alive connection may wait for its next request before it is
    /// closed. Connections busy with a request (SSE, long polls) and WebSockets are
    /// not idle.
    #[arg(
        long,
        env = "SWITCHBOARD_IDLE_TIMEOUT_SECS",
        value_parser = clap::value_parser!(u64).range(1..),
        default_value_t = 30
    )]
    pub idle_timeout_secs: u64,

    /// Most client connections open at once (WebSockets and streams included;
    /// lowered to fit the open-file limit). Past it a few more are kept for
    /// `/healthz` and `/readyz` only (others get 503), and the rest are closed at once.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS",
        value_parser = at_least_one,
        default_value_t = 20_000
    )]
    pub max_connections: usize,
}

impl Config {
    /// The defaults `--help` shows, without reading the environment: what tests start
    /// from, so an exported `SWITCHBOARD_*` variable cannot change a test.
    pub fn defaults() -> Self {
        let command = Cli::command().mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["switchboard"])
            .expect("the defaults parse");
        Cli::from_arg_matches(&matches)
            .expect("the defaults parse")
            .config
    }
}

impl HttpConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn tls(&self) -> bool {
        self.tls_cert.is_some()
    }
}

impl Command {
    /// The command line and the environment of this process, the way `main` reads
    /// them: flags beat their `SWITCHBOARD_*` variables (clap's rule), and the first
    /// admin's password comes from `SWITCHBOARD_ADMIN_PASSWORD` only.
    pub fn from_process() -> Self {
        let mut command = Cli::parse().into_command();
        if let Command::Serve(config) = &mut command {
            config.security.admin_password = std::env::var("SWITCHBOARD_ADMIN_PASSWORD")
                .ok()
                .filter(|password| !password.is_empty())
                .map(Secret::new);
        }
        command
    }
}

/// A value that must never reach a log: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A database or Redis URL: `Debug` and `Display` hide its password.
#[derive(Clone, PartialEq, Eq)]
pub struct Url(String);

impl Url {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The URL with its password, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Url {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Url {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl std::str::FromStr for Url {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(text))
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// `--password-min-chars`: 8 to 128.
fn password_min_chars(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (8..=128).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a whole number from 8 to 128")),
    }
}

/// A database URL this server can open: `sqlite:`, `postgres://`/`postgresql://`,
/// or a bare file path (SQLite). Another scheme is refused instead of becoming a
/// SQLite file named after it.
fn database_url(text: &str) -> Result<Url, String> {
    const SUPPORTED: &str = "use sqlite://path/to/file.db or postgres://user:pass@host/db";
    let scheme = text.split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        None if text.trim().is_empty() => Err(format!("an empty database URL: {SUPPORTED}")),
        None | Some("sqlite" | "postgres" | "postgresql") => Ok(Url::new(text)),
        Some(other) => Err(format!(
            "{:?} is not a supported database: {SUPPORTED}",
            format!("{other}://")
        )),
    }
}

/// A count that must not be zero.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) | Err(_) => Err(format!("{text:?} is not a whole number of at least 1")),
        Ok(n) => Ok(n),
    }
}

/// `10.0.0.0/8` or a single address (`10.0.0.1` = `10.0.0.1/32`).
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))
}

/// A `tracing` filter that parses, so a typo is refused at start instead of
/// silently logging at `info`.
fn parse_log_filter(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(text)
        .map(|_| text.to_owned())
        .map_err(|err| format!("{text:?} is not a log filter: {err}"))
}

/// A database URL with its password replaced, for logs and `Debug`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let command = Cli::command().mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from(args)?;
        Ok(Cli::from_arg_matches(&matches)?.config)
    }

    #[test]
    fn passwords_are_redacted_from_urls_and_secrets_from_debug() {
        assert_eq!(
            redact_url("postgres://sb:s3cret@db:5432/sb"),
            "postgres://sb:***@db:5432/sb"
        );
        assert_eq!(redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
        let mut config = Config::defaults();
        config.database.url = Url::new("postgres://a:hunter2@h/d");
        config.database.redis_url = Some(Url::new("redis://:swordfish@r:6379"));
        config.security.admin_password = Some(Secret::new("correct horse battery"));
        let shown = format!("{config:?}");
        for secret in ["hunter2", "swordfish", "correct horse"] {
            assert!(!shown.contains(secret), "{secret} shows in {shown}");
        }
        // Everything else does: Debug is derived, so no field can be forgotten.
        for field in [
            "history_max_messages",
            "rooms_per_connection",
            "login_per_minute",
        ] {
            assert!(shown.contains(field), "{field} is missing from {shown}");
        }
        assert_eq!(config.database.url.expose(), "postgres://a:hunter2@h/d");
    }

    #[test]
    fn no_arguments_means_serve_on_localhost_8080_with_sqlite() {
        let cli = Cli::parse_from(["switchboard"]);
        assert!(cli.command.is_none());
        let config = Config::defaults();
        assert_eq!(config.http.bind.to_string(), "127.0.0.1:8080");
        assert!(config.database.url.expose().starts_with("sqlite://"));
    }

    /// The defaults tests build on read no environment, and a flag beats its
    /// variable. (The variable is set only in a child process, so no other test
    /// running in this one can see it.)
    #[test]
    fn defaults_ignore_the_environment_and_a_flag_beats_its_variable() {
        if std::env::var_os("SWITCHBOARD_CONFIG_TEST_CHILD").is_some() {
            assert_eq!(Config::defaults().realtime.queue, 256);
            let cli = Cli::parse_from(["switchboard"]);
            assert_eq!(cli.config.realtime.queue, 7, "the variable applies");
            let cli = Cli::parse_from(["switchboard", "--realtime-queue", "9"]);
            assert_eq!(cli.config.realtime.queue, 9, "the flag wins");
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "config::tests::defaults_ignore_the_environment_and_a_flag_beats_its_variable",
                "--nocapture",
            ])
            .env("SWITCHBOARD_CONFIG_TEST_CHILD", "1")
            .env("SWITCHBOARD_REALTIME_QUEUE", "7")
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn the_admin_password_is_no_flag() {
        let error = parse(&["switchboard", "--admin-password", "x"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(Config::defaults().security.admin_password.is_none());
    }

    #[test]
    fn bad_values_are_refused_with_the_flags_name() {
        for (flag, value) in [
            ("--history-max-messages", "-1"),
            ("--history-max-messages", "0"),
            ("--history-max-days", "-5"),
            ("--realtime-queue", "0"),
            ("--realtime-rooms-per-connection", "0"),
            ("--max-message-chars", "0"),
            ("--rate-write-per-second", "0"),
            ("--db-max-connections", "0"),
            ("--log", "info,[unclosed"),
            ("--header-timeout-secs", "0"),
            ("--idle-timeout-secs", "0"),
            ("--max-connections", "0"),
            ("--db-acquire-timeout-ms", "0"),
        ] {
            let arg = format!("{flag}={value}");
            let error = parse(&["switchboard", &arg]).expect_err(&arg).to_string();
            assert!(error.contains(flag), "{arg}: {error}");
        }
        let config = parse(&["switchboard", "--log", "warn,switchboard=debug"]).unwrap();
        assert_eq!(config.log.filter.as_deref(), Some("warn,switchboard=debug"));
        assert_eq!(Config::defaults().log.filter, None, "RUST_LOG or info");
    }

    #[test]
    fn the_postgres_acquire_timeout_is_short_by_default_and_configurable() {
        assert_eq!(Config::defaults().database.acquire_timeout_ms, 2000);
        let config = parse(&["switchboard", "--db-acquire-timeout-ms", "500"]).unwrap();
        assert_eq!(config.database.acquire_timeout_ms, 500);
    }

    #[test]
    fn each_command_takes_its_own_flags_after_it() {
        let cli = Cli::parse_from([
            "switchboard",
            "seed",
            "--users",
            "5",
            "--database-url",
            "sqlite://x.db",
        ]);
        let Some(Command::Seed { users, store, .. }) = cli.command else {
            panic!("not seed");
        };
        assert_eq!((users, store.database_url.expose()), (5, "sqlite://x.db"));
        // A nested command takes the database after its own name too.
        let cli = Cli::parse_from(["switchboard", "user", "list", "--database-url", "y.db"]);
        assert!(
            matches!(cli.command, Some(Command::User { store, .. }) if store.database_url.expose() == "y.db")
        );
        // `serve` takes the server's flags; no command means serve with them.
        let cli = Cli::parse_from(["switchboard", "serve", "--realtime-queue", "9"]);
        let Command::Serve(config) = cli.into_command() else {
            panic!("not serve");
        };
        assert_eq!(config.realtime.queue, 9);
        let cli = Cli::parse_from(["switchboard", "--realtime-queue", "8"]);
        assert!(matches!(cli.into_command(), Command::Serve(config) if config.realtime.queue == 8));
    }

    #[test]
    fn server_flags_do_not_reach_the_administrative_commands() {
        for args in [
            &["switchboard", "--bind", "127.0.0.1:1", "user", "list"][..],
            &["switchboard", "user", "list", "--bind", "127.0.0.1:1"],
            &["switchboard", "migrate", "--redis-url", "redis://x"],
        ] {
            let command = Cli::command().mut_args(|arg| arg.env(None));
            assert!(command.try_get_matches_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn an_unknown_database_scheme_is_refused_naming_the_supported_ones() {
        for url in ["mysql://x", "mongodb://h/db", "SQLITE3://x"] {
            let error = parse(&["switchboard", "--database-url", url])
                .expect_err(url)
                .to_string();
            assert!(
                error.contains("sqlite://") && error.contains("postgres://"),
                "{url}: {error}"
            );
        }
        for url in [
            "sqlite://./a.db",
            "sqlite:a.db",
            "postgres://u@h/d",
            "postgresql://u@h/d",
            "./data/plain.db",
        ] {
            let config = parse(&["switchboard", "--database-url", url]).expect(url);
            assert_eq!(config.database.url.expose(), url);
        }
    }
}
