//! The `switchboard` binary itself: defaults, `--help`, `migrate`, `seed`, and a
//! clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn switchboard(dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env("SWITCHBOARD_LOG_FORMAT", "json")
        .env_remove("RUST_LOG");
    command
}

#[test]
fn help_explains_every_flag_and_its_environment_variable() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--bind",
        "--database-url",
        "--max-body-bytes",
        "--request-timeout-secs",
        "--log-format",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    assert!(help.contains("SWITCHBOARD_DATABASE_URL"), "{help}");
    for command in ["serve", "migrate", "seed"] {
        assert!(help.contains(command), "{command} missing from --help");
    }
}

#[test]
fn seed_adds_deterministic_users_once_and_migrate_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = "sqlite://./seeded.db";
    for _ in 0..2 {
        let status = switchboard(dir.path())
            .args(["migrate", "--database-url", url])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let run_seed = || {
        let output = switchboard(dir.path())
            .args(["seed", "--users", "3000", "--database-url", url])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(run_seed().contains(r#""added":3000"#));
    assert!(
        run_seed().contains(r#""added":0"#),
        "seeding twice adds nobody"
    );
}

/// Reads the server's JSON log until the "listening" line, returns its address.
fn wait_for_address(stdout: impl std::io::Read) -> String {
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let line = lines.next().expect("the server is still running").unwrap();
        if line.contains("listening") {
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            return value["address"].as_str().unwrap().to_owned();
        }
    }
    panic!("the server did not say where it listens");
}

#[tokio::test]
async fn with_no_command_it_serves_sqlite_in_data_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = switchboard(dir.path())
        .env("SWITCHBOARD_BIND", "127.0.0.1:0")
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let address = tokio::task::spawn_blocking(move || wait_for_address(stdout))
        .await
        .unwrap();
    assert!(
        dir.path().join("data/switchboard.db").exists(),
        "./data/switchboard.db is created"
    );

    let users: serde_json::Value = reqwest::get(format!("http://{address}/api/users"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        users.as_array().unwrap().len(),
        3,
        "the demo users on a first run"
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
}
