//! Logs and process signals: the tracing subscriber (pretty or JSON lines) and the
//! future that completes on SIGINT or SIGTERM.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber and [`log_panics`]. The filter is `--log` (or
/// `SWITCHBOARD_LOG`) when given, which the command line has already checked; else
/// `RUST_LOG` when set and valid; else `info`.
pub fn init_logging(config: &LogConfig) {
    log_panics();
    let filter = match &config.filter {
        Some(given) => EnvFilter::new(given),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match config.format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Sends panics through `tracing` (an ERROR event with the message, the location and
/// the thread) instead of the default hook's text on stderr, so `--log-format json`
/// stays one JSON object per line even then. The request's span, when the panic
/// happened inside one, adds its request id. The panic then unwinds as before (the
/// HTTP layer answers 500).
pub fn log_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // With no subscriber to hear it (before logging is set up, or on a thread of
        // a test), the default hook still prints the panic.
        let heard =
            tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>());
        if !heard {
            return default(info);
        }
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic without a message)".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(
            event = "panic",
            panic.message = %message,
            panic.location = %location,
            thread = thread.name().unwrap_or("unnamed"),
            "panicked"
        );
    }));
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    /// A writer into a shared buffer, for a subscriber under test.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            crate::sync::lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A panic becomes one JSON log line with its message and location, and nothing
    /// else is written (the default hook would print text on stderr).
    #[test]
    fn a_panic_is_one_json_log_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || writer.clone())
            .finish();
        let previous = std::panic::take_hook();
        super::log_panics();
        let dispatch = tracing::Dispatch::new(subscriber);
        let outcome = std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                std::panic::catch_unwind(|| panic!("boom {}", 42)).is_err()
            })
        })
        .join()
        .unwrap();
        std::panic::set_hook(previous);
        assert!(outcome, "the panic still unwinds");
        let text = String::from_utf8(crate::sync::lock(&buffer.0).clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["event"], "panic");
        assert_eq!(line["panic.message"], "boom 42");
        assert!(
            line["panic.location"]
                .as_str()
                .unwrap()
                .contains("telemetry.rs"),
            "{line}"
        );
    }
}
