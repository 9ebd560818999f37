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

    /// Most database connections the server opens (SQLite: readers; one writer is extra).
    #[arg(
        long,
        env = "SWITCHBOARD_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_max_connections: u32,

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

impl Config {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

impl Default for Config {
    /// The defaults `--help` shows (environment variables still apply).
    fn default() -> Self {
        Cli::parse_from(["switchboard"]).config
    }
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
            .field("db_max_connections", &self.db_max_connections)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("demo_users", &self.demo_users)
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
