//! The `switchboard` binary itself: defaults, `--help`, `migrate`, `seed`, and a
//! clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
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
    // In bulk, without a directory event per user (README: an open directory page
    // shows seeded users after a reload).
    let db = rusqlite::Connection::open(dir.path().join("seeded.db")).unwrap();
    let events: i64 = db
        .query_row(
            "SELECT count(*) FROM messages WHERE room = 'directory'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(events, 0);
}

/// Reads the server's JSON log until the "listening" line, returns its address.
/// The rest of the output is drained in the background, so the server never writes
/// into a closed pipe.
fn wait_for_address(stdout: impl std::io::Read + Send + 'static) -> String {
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let line = lines.next().expect("the server is still running").unwrap();
        if line.contains("listening") {
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            std::thread::spawn(move || lines.for_each(drop));
            return value["address"].as_str().unwrap().to_owned();
        }
    }
    panic!("the server did not say where it listens");
}

/// A started server, killed if the test fails before stopping it (a panicking test
/// must not leave a process behind).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sends SIGTERM and waits (at most 15 s) for a clean exit.
fn stop(child: &mut Child) -> ExitStatus {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success(), "kill -TERM {pid}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn with_no_command_it_serves_sqlite_in_data_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Running(
        switchboard(dir.path())
            .env("SWITCHBOARD_BIND", "127.0.0.1:0")
            .env("SWITCHBOARD_ADMIN_PASSWORD", crate::helpers::ADMIN_PASSWORD)
            .env_remove("SWITCHBOARD_DATABASE_URL")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let address = tokio::task::spawn_blocking(move || wait_for_address(stdout))
        .await
        .unwrap();
    assert!(
        dir.path().join("data/switchboard.db").exists(),
        "./data/switchboard.db is created"
    );

    let client = crate::helpers::login(
        address.parse().unwrap(),
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    let users: serde_json::Value = client
        .get(format!("http://{address}/api/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Alice", "Bob", "Charlie", "Admin"],
        "the demo users on a first run, and the admin"
    );

    let status = stop(&mut child.0);
    assert!(status.success(), "exit status {status}");
}

#[test]
fn the_first_start_prints_a_one_time_admin_password_that_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut child = Running(
            switchboard(dir.path())
                .env("SWITCHBOARD_BIND", "127.0.0.1:0")
                .env_remove("SWITCHBOARD_ADMIN_PASSWORD")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let address = wait_for_address(child.0.stdout.take().unwrap());
        (child, address)
    };
    let (mut child, address) = start();
    stop(&mut child.0);
    let mut console = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut console).unwrap();
    let password = console
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .expect("a generated password on the console")
        .trim()
        .to_owned();
    assert!(password.len() >= 20, "{password}");

    // It works, and a second start (an admin exists now) prints nothing.
    let (mut child, address2) = start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        crate::helpers::login(address2.parse().unwrap(), "admin@example.com", &password).await;
    });
    stop(&mut child.0);
    let mut console = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut console).unwrap();
    assert!(
        !console.contains("password:"),
        "printed only once: {console}"
    );
    let _ = address;
}

#[test]
fn user_and_token_commands_manage_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let url = "sqlite://./accounts.db";
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = switchboard(dir.path())
            .args(args)
            .args(["--database-url", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
        )
    };
    let (ok, out) = run(
        &[
            "user",
            "add",
            "--email",
            "ops@example.com",
            "--name",
            "Ops",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(ok, "{out}");
    let (ok, out) = run(&["user", "passwd", "--email", "OPS@example.com"], None);
    assert!(
        ok && out.contains("password: "),
        "a generated password is printed: {out}"
    );
    let (ok, out) = run(&["user", "list"], None);
    assert!(ok && out.contains("admin   Ops <ops@example.com>"), "{out}");
    let (ok, out) = run(
        &[
            "token",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "ci",
        ],
        None,
    );
    assert!(ok, "{out}");
    let token = out.lines().last().unwrap();
    assert!(token.starts_with("sb_"), "{out}");
    let id = out.split_whitespace().nth(1).unwrap();
    let (ok, _) = run(&["token", "revoke", "--id", id], None);
    assert!(ok);
    let (ok, _) = run(&["token", "revoke", "--id", id], None);
    assert!(!ok, "revoking twice fails");
    let (ok, _) = run(
        &[
            "user",
            "add",
            "--email",
            "x@example.com",
            "--name",
            "X",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!ok, "the password policy applies");
}

/// Starts `switchboard` serving `url` in `dir` and returns it with its address.
async fn serve_sqlite(dir: &std::path::Path, url: &str) -> (Running, String) {
    let mut child = Running(
        switchboard(dir)
            .env("SWITCHBOARD_BIND", "127.0.0.1:0")
            .env("SWITCHBOARD_ADMIN_PASSWORD", crate::helpers::ADMIN_PASSWORD)
            .env("SWITCHBOARD_DATABASE_URL", url)
            .env("SWITCHBOARD_RATE_LIMITS", "false")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let address = tokio::task::spawn_blocking(move || wait_for_address(stdout))
        .await
        .unwrap();
    (child, address)
}

#[tokio::test]
async fn backup_copies_a_live_database_that_serves_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (mut live, address) = serve_sqlite(dir.path(), "sqlite://./live.db").await;
    let client = crate::helpers::login(
        address.parse().unwrap(),
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;

    // Writers keep creating users while the backup runs; every create acknowledged
    // before the backup started must be in the copy.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop_writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (client, address, acknowledged, stop_writing) = (
            client.clone(),
            address.clone(),
            acknowledged.clone(),
            stop_writing.clone(),
        );
        async move {
            for i in 0.. {
                if stop_writing.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let email = format!("backup{i}@example.com");
                let response = client
                    .post(format!("http://{address}/api/users"))
                    .json(&serde_json::json!({"name": format!("Backup {i}"), "email": email}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201, "{:?}", response.text().await);
                acknowledged.lock().unwrap().push(email);
            }
        }
    });
    while acknowledged.lock().unwrap().len() < 200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let output = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || {
            switchboard(&dir)
                .args(["backup", "copy.db", "--database-url", "sqlite://./live.db"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    stop_writing.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8(output.stdout).unwrap();
    assert!(said.contains("backed up"), "{said}");
    assert!(
        acknowledged.lock().unwrap().len() > before.len(),
        "the server kept accepting writes around the backup"
    );

    // A second backup to the same path is refused rather than overwriting it.
    let again = switchboard(dir.path())
        .args(["backup", "copy.db", "--database-url", "sqlite://./live.db"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert!(stop(&mut live.0).success());

    // Restoring is starting a server on the copy.
    let (mut restored, address) = serve_sqlite(dir.path(), "sqlite://./copy.db").await;
    let client = crate::helpers::login(
        address.parse().unwrap(),
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    for email in before.iter().step_by(7).chain(before.last()) {
        let found: serde_json::Value = client
            .get(format!("http://{address}/api/users?search={email}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(found.as_array().unwrap().len(), 1, "{email} is in the copy");
    }
    assert!(stop(&mut restored.0).success());
}

#[test]
fn backup_refuses_postgres_and_names_the_tool_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let output = switchboard(dir.path())
        .args([
            "backup",
            "copy.sql",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"));
}

/// The CLI builds users through the directory's one name rule: a bidi override is
/// refused there too.
#[test]
fn user_add_refuses_a_name_with_a_bidi_override() {
    let dir = tempfile::tempdir().unwrap();
    let output = switchboard(dir.path())
        .args(["user", "add", "--email", "eve@example.com", "--name"])
        .arg("Eve\u{202E}gnp.exe")
        .args(["--database-url", "sqlite://./names.db"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("bidirectional control characters"),
        "{stderr}"
    );
}

/// Each command's `--help` lists its own options: the server's flags only with `serve`.
#[test]
fn each_commands_help_lists_only_its_own_options() {
    let help = |args: &[&str]| {
        let output = Command::new(BIN).args(args).arg("--help").output().unwrap();
        assert!(output.status.success(), "{args:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let serve = help(&["serve"]);
    for flag in [
        "--bind",
        "--redis-url",
        "--database-url",
        "--realtime-queue",
    ] {
        assert!(serve.contains(flag), "serve --help lacks {flag}:\n{serve}");
    }
    let add = help(&["user", "add"]);
    for flag in ["--email", "--name", "--password-stdin", "--database-url"] {
        assert!(add.contains(flag), "user add --help lacks {flag}:\n{add}");
    }
    for args in [
        &["user", "add"][..],
        &["token", "create"],
        &["migrate"],
        &["seed"],
        &["backup"],
    ] {
        let text = help(args);
        for server_flag in ["--bind", "--redis-url", "--max-body-bytes", "--rate-limits"] {
            assert!(
                !text.contains(server_flag),
                "{args:?} --help lists the server's {server_flag}:\n{text}"
            );
        }
    }
}

/// An expected error is one line on stderr that says what to do next: no backtrace,
/// no "Caused by" block, exit code 1.
#[test]
fn expected_cli_errors_are_one_line_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        switchboard(dir.path())
            .args(args)
            .args(["--database-url", "sqlite://./errors.db"])
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let add = [
        "user",
        "add",
        "--email",
        "dana@example.com",
        "--name",
        "Dana",
    ];
    assert!(run(&add).status.success());
    for (args, next_step) in [
        (&add[..], "switchboard user passwd --email dana@example.com"),
        (&["token", "revoke", "--id", "99"], "GET /api/tokens"),
        (
            &[
                "token",
                "create",
                "--email",
                "nobody@example.com",
                "--name",
                "ci",
            ],
            "nobody@example.com",
        ),
    ] {
        let output = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line:\n{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(next_step), "{args:?}: {stderr}");
        assert!(!stderr.contains("backtrace"), "{stderr}");
    }
}

/// `--database-url mysql://x` is refused, naming what is supported, and creates no
/// SQLite file named after the URL.
#[test]
fn an_unsupported_database_url_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = switchboard(dir.path())
        .args(["migrate", "--database-url", "mysql://x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A usage error, as README says: status 2 and clap's one `error:` line.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains("sqlite://") && stderr.contains("postgres://"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "created {left:?}");
}

/// A start that cannot listen, or cannot reach its database, names the address and
/// the database (without the password).
#[test]
fn start_errors_name_the_address_and_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = switchboard(dir.path())
        .args([
            "serve",
            "--bind",
            &address,
            "--database-url",
            "sqlite://./a.db",
        ])
        .env("SWITCHBOARD_ADMIN_PASSWORD", "correct horse battery staple")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&address) && last.contains("--bind"),
        "{stderr}"
    );

    // Nothing listens on port 1 of loopback.
    let output = switchboard(dir.path())
        .args([
            "migrate",
            "--database-url",
            "postgres://sb:hunter2@127.0.0.1:1/sb",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("postgres://sb:***@127.0.0.1:1/sb"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
