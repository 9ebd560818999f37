//! The `switchboard` command: parse the command line, set up logging, run. An error
//! ends it with one line on stderr (what failed and, where we know it, what to do
//! next) and exit code 1; never a backtrace.

use std::process::ExitCode;

use anyhow::Context;
use switchboard::config::{Command, StoreArgs};
use switchboard::store::Store;
use switchboard::{App, cli, directory, store, telemetry};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let command = Command::from_process();
    telemetry::init_logging(&command.log());
    match run(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}`: the causes on the same line, "a: b: c".
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(config) => serve(*config).await,
        Command::Migrate { store, .. } => {
            let store = open(&store).await?;
            store.migrate().await?;
            store.close().await;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::User {
            store,
            password_min_chars,
            action,
        } => {
            let store = open_migrated(&store).await?;
            let policy = switchboard::auth::password::Policy::new(password_min_chars);
            let result = cli::user(store.as_ref(), action, &policy).await;
            store.close().await;
            result
        }
        Command::Token { store, action } => {
            let store = open_migrated(&store).await?;
            let result = cli::token(store.as_ref(), action).await;
            store.close().await;
            result
        }
        Command::Backup { path, store } => cli::backup(store.database_url.expose(), &path),
        Command::Seed { users, store, .. } => {
            let store = open_migrated(&store).await?;
            let started = std::time::Instant::now();
            let added = directory::synthetic::seed(store.as_ref(), users).await?;
            store.close().await;
            tracing::info!(added, requested = users, elapsed = ?started.elapsed(), "seeded synthetic users");
            Ok(())
        }
    }
}

/// The database of an administrative command, named (password hidden) if it fails.
async fn open(args: &StoreArgs) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    store::connect(args.database_url.expose(), 1)
        .await
        .with_context(|| format!("cannot open the database {}", args.database_url))
}

async fn open_migrated(args: &StoreArgs) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let store = open(args).await?;
    store.migrate().await?;
    Ok(store)
}

async fn serve(config: switchboard::Config) -> anyhow::Result<()> {
    let bind = config.http.bind;
    switchboard::edge::raise_open_file_limit();
    let app = App::build(config).await?;
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (choose another address with --bind)"))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    app.serve(listener, telemetry::shutdown_signal()).await?;
    Ok(())
}
