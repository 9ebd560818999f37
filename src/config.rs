//! The command line: every setting is a flag with a `SWITCHBOARD_*` environment
//! variable, parsed once into [`Config`]; the `///` comments are the `--help` text.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about = "A self-hosted server for interactive web apps: a user directory API, a browser UI and a realtime hub.",
    long_about = None
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve,
    /// Apply the database migrations, then exit.
    Migrate,
    /// Add deterministic synthetic users (for demos and benchmarks), then exit.
    Seed {
        /// How many users: user N is the same on every run, and users that already
        /// exist are skipped, so seeding twice adds nothing.
        #[arg(long, default_value_t = 1000)]
        users: u64,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Copy the SQLite database to PATH while the server keeps running (SQLite's
    /// online backup API: one consistent snapshot). On PostgreSQL, use pg_dump.
    Backup {
        /// Where to write the copy; it must not exist yet.
        path: std::path::PathBuf,
    },
}

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

#[derive(Args, Clone)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(
        long,
        env = "SWITCHBOARD_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,

    /// Database: `sqlite://path/to/file.db` (created when missing) or
    /// `postgres://user:pass@host/db` (the database must exist).
    #[arg(
        long,
        env = "SWITCHBOARD_DATABASE_URL",
        default_value = "sqlite://./data/switchboard.db",
        global = true
    )]
    pub database_url: String,

    /// Redis (`redis://host:6379`), for running several instances: rate limits are
    /// then shared by all of them. Without it everything stays in this process.
    #[arg(long, env = "SWITCHBOARD_REDIS_URL", global = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key this server writes, so several deployments (or test
    /// runs) can share one Redis.
    #[arg(
        long,
        env = "SWITCHBOARD_REDIS_PREFIX",
        default_value = "switchboard:",
        global = true
    )]
    pub redis_prefix: String,

    /// Most database connections the server opens (SQLite: readers; one writer is extra).
    #[arg(
        long,
        env = "SWITCHBOARD_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_max_connections: u32,

    /// How long a request waits for a PostgreSQL connection from the pool before it
    /// gets 503, in milliseconds: short, so a database outage fails requests fast
    /// instead of hanging them (they recover by themselves when it is back).
    #[arg(
        long,
        env = "SWITCHBOARD_DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 2000,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub db_acquire_timeout_ms: u64,

    /// Largest request body accepted, in bytes (larger ones get 413).
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", default_value_t = 1024 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// Seconds an API request may take before it is answered 503.
    #[arg(
        long,
        env = "SWITCHBOARD_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub request_timeout_secs: u64,

    /// Seconds to wait for open requests and connections at shutdown.
    #[arg(
        long,
        env = "SWITCHBOARD_SHUTDOWN_GRACE_SECS",
        default_value_t = 10,
        global = true
    )]
    pub shutdown_grace_secs: u64,

    /// Add the seed's three demo users (Alice, Bob, Charlie) when the directory is empty.
    #[arg(
        long,
        env = "SWITCHBOARD_DEMO_USERS",
        default_value_t = true,
        action = ArgAction::Set,
        global = true
    )]
    pub demo_users: bool,

    /// Email of the admin account created on first start when no admin exists. Its
    /// password is `SWITCHBOARD_ADMIN_PASSWORD` when set (an environment variable only,
    /// so it never shows in `ps`), otherwise a random one printed once to the console.
    #[arg(
        long,
        env = "SWITCHBOARD_ADMIN_EMAIL",
        default_value = "admin@example.com",
        global = true
    )]
    pub admin_email: String,

    /// Password for that first admin. Prefer the environment variable: a flag shows up
    /// in the process list.
    #[arg(
        long,
        env = "SWITCHBOARD_ADMIN_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub admin_password: Option<String>,

    /// Shortest password accepted (8-128; see README, "Security").
    #[arg(
        long,
        env = "SWITCHBOARD_PASSWORD_MIN_CHARS",
        default_value_t = crate::auth::password::DEFAULT_MIN_CHARS,
        value_parser = clap::builder::TypedValueParser::map(
            clap::value_parser!(u16).range(8..=128),
            usize::from
        ),
        global = true
    )]
    pub password_min_chars: usize,

    /// Minutes a session may be unused before it expires.
    #[arg(long, env = "SWITCHBOARD_SESSION_IDLE_MINUTES", default_value_t = 7 * 24 * 60, global = true)]
    pub session_idle_minutes: u64,

    /// Hours after login when a session expires, however active.
    #[arg(long, env = "SWITCHBOARD_SESSION_MAX_HOURS", default_value_t = 30 * 24, global = true)]
    pub session_max_hours: u64,

    /// Origins (scheme://host[:port]) besides the server's own that may send
    /// cookie-authenticated writes and open WebSockets, comma-separated. Needed behind a
    /// proxy that rewrites `Host`.
    #[arg(
        long,
        env = "SWITCHBOARD_ALLOWED_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_origins: Vec<String>,

    /// Origins allowed to call the API from other sites' pages (CORS), comma-separated.
    /// None by default.
    #[arg(
        long,
        env = "SWITCHBOARD_CORS_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// Proxies (IP addresses or CIDR ranges, comma-separated) whose `X-Forwarded-For`
    /// is believed. Without this the client's address is the socket's peer.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network, global = true)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Login attempts allowed per minute from one client address.
    #[arg(
        long,
        env = "SWITCHBOARD_RATE_LOGIN_PER_MINUTE",
        default_value_t = 10,
        global = true
    )]
    pub rate_login_per_minute: u32,

    /// Failed password checks allowed per minute for one account, from any address
    /// (a burst of this many, then one every 60/n seconds; a right password costs
    /// nothing).
    #[arg(
        long,
        env = "SWITCHBOARD_RATE_LOGIN_ACCOUNT_PER_MINUTE",
        default_value_t = 5,
        global = true
    )]
    pub rate_login_account_per_minute: u32,

    /// Search and autocomplete requests per second per account (bursts of twice this
    /// pass, so live search while typing never trips it).
    #[arg(
        long,
        env = "SWITCHBOARD_RATE_SEARCH_PER_SECOND",
        default_value_t = 20,
        global = true
    )]
    pub rate_search_per_second: u32,

    /// Writes (POST, PUT, PATCH, DELETE) per second per account.
    #[arg(
        long,
        env = "SWITCHBOARD_RATE_WRITE_PER_SECOND",
        default_value_t = 20,
        global = true
    )]
    pub rate_write_per_second: u32,

    /// Other requests per second per account.
    #[arg(
        long,
        env = "SWITCHBOARD_RATE_GENERAL_PER_SECOND",
        default_value_t = 100,
        global = true
    )]
    pub rate_general_per_second: u32,

    /// Turns rate limiting off (benchmarks; never in production).
    #[arg(long, env = "SWITCHBOARD_RATE_LIMITS", default_value_t = true, action = ArgAction::Set, global = true)]
    pub rate_limits: bool,

    /// PEM certificate chain: serve HTTPS (HTTP/1.1 and HTTP/2) instead of HTTP.
    #[arg(
        long,
        env = "SWITCHBOARD_TLS_CERT",
        requires = "tls_key",
        global = true
    )]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(
        long,
        env = "SWITCHBOARD_TLS_KEY",
        requires = "tls_cert",
        global = true
    )]
    pub tls_key: Option<std::path::PathBuf>,

    /// Connection cap and timeouts at the HTTP edge (slow clients).
    #[command(flatten)]
    pub edge: EdgeConfig,

    /// Messages kept per chat room; older ones are deleted (a client resuming from
    /// before them is told to reload instead of getting a partial replay).
    #[arg(
        long,
        env = "SWITCHBOARD_HISTORY_MAX_MESSAGES",
        default_value_t = 10_000,
        global = true
    )]
    pub history_max_messages: i64,

    /// Days a chat message is kept.
    #[arg(
        long,
        env = "SWITCHBOARD_HISTORY_MAX_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub history_max_days: i64,

    /// Longest chat message, in characters.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_MESSAGE_CHARS",
        default_value_t = 4_000,
        global = true
    )]
    pub max_message_chars: usize,

    /// Chat messages per second one realtime connection may send (bursts of twice
    /// this pass).
    #[arg(
        long,
        env = "SWITCHBOARD_REALTIME_SEND_PER_SECOND",
        default_value_t = 10,
        global = true
    )]
    pub realtime_send_per_second: u32,

    /// Realtime connections (WebSocket, Socket.IO, SSE, long polls) one account may
    /// hold open at once.
    #[arg(
        long,
        env = "SWITCHBOARD_REALTIME_CONNECTIONS_PER_USER",
        default_value_t = 32,
        global = true
    )]
    pub realtime_connections_per_user: u32,

    /// Realtime connections one client address may hold open at once.
    #[arg(
        long,
        env = "SWITCHBOARD_REALTIME_CONNECTIONS_PER_IP",
        default_value_t = 256,
        global = true
    )]
    pub realtime_connections_per_ip: u32,

    /// Deliveries queued per realtime connection; a client that falls further
    /// behind is disconnected (`slow_consumer`) and resumes from its position.
    #[arg(
        long,
        env = "SWITCHBOARD_REALTIME_QUEUE",
        default_value_t = 256,
        global = true
    )]
    pub realtime_queue: usize,

    /// Rooms one realtime connection may follow at once (a WebSocket, a Socket.IO
    /// socket, one `/api/events?rooms=` stream); joining one more is refused with
    /// `too_many_rooms` until the client leaves one.
    #[arg(
        long,
        env = "SWITCHBOARD_REALTIME_ROOMS_PER_CONNECTION",
        default_value_t = 50,
        global = true
    )]
    pub realtime_rooms_per_connection: usize,

    /// Log filter, in `tracing` syntax (e.g. `info`, `warn,switchboard=debug`).
    #[arg(long, env = "SWITCHBOARD_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The HTTP edge: how many connections may be open and how long one may take to
/// send a request or sit idle (see `crate::edge`).
#[derive(Args, Clone, Debug)]
pub struct EdgeConfig {
    /// Seconds a client has to send a request's line and headers, counted from the
    /// connection's opening (the TLS handshake included) or from the first byte of a
    /// later request; a connection that is slower, or silent, is closed.
    #[arg(
        long,
        env = "SWITCHBOARD_HEADER_TIMEOUT_SECS",
        value_parser = clap::value_parser!(u64).range(1..),
        default_value_t = 5,
        global = true
    )]
    pub header_timeout_secs: u64,

    /// Seconds a kept-alive connection may wait for its next request before it is
    /// closed. Connections busy with a request (SSE, long polls) and WebSockets are
    /// not idle.
    #[arg(
        long,
        env = "SWITCHBOARD_IDLE_TIMEOUT_SECS",
        value_parser = clap::value_parser!(u64).range(1..),
        default_value_t = 30,
        global = true
    )]
    pub idle_timeout_secs: u64,

    /// Most client connections open at once (WebSockets and streams included;
    /// lowered to fit the open-file limit). Past it a few more are kept for
    /// `/healthz` and `/readyz` only (others get 503), and the rest are closed at once.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS",
        value_parser = at_least_one,
        default_value_t = 20_000,
        global = true
    )]
    pub max_connections: usize,
}

impl Config {
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

impl Default for Config {
    /// The defaults `--help` shows (environment variables still apply).
    fn default() -> Self {
        Cli::parse_from(["switchboard"]).config
    }
}

/// A count that must not be zero (no connection at all would be served).
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

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("db_max_connections", &self.db_max_connections)
            .field("db_acquire_timeout_ms", &self.db_acquire_timeout_ms)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("demo_users", &self.demo_users)
            .field("admin_email", &self.admin_email)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "***"),
            )
            .field("password_min_chars", &self.password_min_chars)
            .field("session_idle_minutes", &self.session_idle_minutes)
            .field("session_max_hours", &self.session_max_hours)
            .field("allowed_origins", &self.allowed_origins)
            .field("cors_origins", &self.cors_origins)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("rate_limits", &self.rate_limits)
            .field("tls_cert", &self.tls_cert)
            .field("edge", &self.edge)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(
            redact_url("postgres://sb:s3cret@db:5432/sb"),
            "postgres://sb:***@db:5432/sb"
        );
        assert_eq!(redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
        assert!(
            !format!(
                "{:?}",
                Config {
                    database_url: "postgres://a:hunter2@h/d".into(),
                    ..Config::default()
                }
            )
            .contains("hunter2")
        );
    }

    #[test]
    fn no_arguments_means_serve_on_localhost_8080_with_sqlite() {
        let cli = Cli::parse_from(["switchboard"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.config.bind.to_string(), "127.0.0.1:8080");
        assert!(cli.config.database_url.starts_with("sqlite://"));
    }

    #[test]
    fn edge_timeouts_and_cap_refuse_zero() {
        for flag in [
            "--header-timeout-secs",
            "--idle-timeout-secs",
            "--max-connections",
        ] {
            assert!(
                Cli::try_parse_from(["switchboard", flag, "0"]).is_err(),
                "{flag}"
            );
            assert!(
                Cli::try_parse_from(["switchboard", flag, "3"]).is_ok(),
                "{flag}"
            );
        }
    }

    #[test]
    fn the_postgres_acquire_timeout_is_short_by_default_and_configurable() {
        let cli = Cli::parse_from(["switchboard"]);
        assert_eq!(cli.config.db_acquire_timeout_ms, 2000);
        let cli = Cli::parse_from(["switchboard", "--db-acquire-timeout-ms", "500"]);
        assert_eq!(cli.config.db_acquire_timeout_ms, 500);
        assert!(Cli::try_parse_from(["switchboard", "--db-acquire-timeout-ms", "0"]).is_err());
    }

    #[test]
    fn global_flags_may_follow_the_subcommand() {
        let cli = Cli::parse_from([
            "switchboard",
            "seed",
            "--users",
            "5",
            "--database-url",
            "sqlite://x.db",
        ]);
        assert!(matches!(cli.command, Some(Command::Seed { users: 5 })));
        assert_eq!(cli.config.database_url, "sqlite://x.db");
    }
}
