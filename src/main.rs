//! The `switchboard` command: parse the command line, set up logging, run.

use switchboard::config::{Cli, Command};
use switchboard::{App, cli, directory, store, telemetry};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::from_process();
    telemetry::init_logging(&cli.config.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => {
            let store = store::connect(cli.config.database.url.expose(), 1).await?;
            store.migrate().await?;
            store.close().await;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::User { action } => {
            let store = store::connect(cli.config.database.url.expose(), 1).await?;
            store.migrate().await?;
            let policy =
                switchboard::auth::password::Policy::new(cli.config.security.password_min_chars);
            let result = cli::user(store.as_ref(), action, &policy).await;
            store.close().await;
            result
        }
        Command::Token { action } => {
            let store = store::connect(cli.config.database.url.expose(), 1).await?;
            store.migrate().await?;
            let result = cli::token(store.as_ref(), action).await;
            store.close().await;
            result
        }
        Command::Backup { path } => cli::backup(cli.config.database.url.expose(), &path),
        Command::Seed { users } => {
            let store = store::connect(cli.config.database.url.expose(), 1).await?;
            store.migrate().await?;
            let started = std::time::Instant::now();
            let added = directory::synthetic::seed(store.as_ref(), users).await?;
            store.close().await;
            tracing::info!(added, requested = users, elapsed = ?started.elapsed(), "seeded synthetic users");
            Ok(())
        }
    }
}

async fn serve(config: switchboard::Config) -> anyhow::Result<()> {
    let bind = config.http.bind;
    switchboard::edge::raise_open_file_limit();
    let app = App::build(config).await?;
    let listener = TcpListener::bind(bind).await?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    app.serve(listener, telemetry::shutdown_signal()).await?;
    Ok(())
}
