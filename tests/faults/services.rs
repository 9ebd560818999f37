//! The processes a fault test owns, each cleaned up by its `Drop` even when the test
//! fails: a `redis-server` and a PostgreSQL cluster (Debian's binaries, in a temporary
//! directory, on free ports), and real `switchboard` processes on them. Each can be
//! killed (SIGKILL), paused (SIGSTOP), resumed (SIGCONT) and started again.

use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's PostgreSQL 15 binaries (`SWITCHBOARD_PG_BIN` for another directory).
fn pg_bin() -> PathBuf {
    std::env::var_os("SWITCHBOARD_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Whether the fault suite can run here: `redis-server`, `initdb` and `pg_ctl`, and
/// (as root, which PostgreSQL refuses to run as) `runuser` and a `postgres` user. When
/// something is missing the test is skipped and says so, unless
/// `TEST_FAULTS_REQUIRED` is set (`.ci/run` sets it): then it fails.
pub fn available(test: &str) -> bool {
    let mut missing = Vec::new();
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        missing.push("redis-server".to_owned());
    }
    for tool in ["initdb", "pg_ctl"] {
        if !pg_bin().join(tool).exists() {
            missing.push(pg_bin().join(tool).display().to_string());
        }
    }
    if running_as_root() && postgres_uid().is_none() {
        missing.push("a postgres user (runuser -u postgres)".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "SKIPPED {test}: the fault suite needs {}",
        missing.join(", ")
    );
    assert!(std::env::var_os("TEST_FAULTS_REQUIRED").is_none(), "{why}");
    eprintln!("{why}");
    false
}

fn postgres_uid() -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} did not open port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (a name: KILL, STOP, CONT) to each process, by id.
fn signal(pids: &[u32], signal: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-s")
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// The processes whose parent is `parent` (from /proc).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces, so after the last ')'.
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie has exited: /proc/PID/stat says "Z".
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

// ---- Redis -----------------------------------------------------------------------

pub struct Redis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is still running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server");
    }

    /// SIGKILL: gone at once, connections reset.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn pid(&self) -> Vec<u32> {
        self.child.iter().map(Child::id).collect()
    }

    /// SIGSTOP: connections stay open and nothing answers (a hung server, a
    /// partition).
    pub fn pause(&self) {
        signal(&self.pid(), "STOP");
    }

    pub fn resume(&self) {
        signal(&self.pid(), "CONT");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

// ---- PostgreSQL ------------------------------------------------------------------

/// A PostgreSQL cluster of the test's own: `initdb` into a temporary directory (owned
/// by the `postgres` user when the test runs as root), started by `pg_ctl` on a free
/// port with its socket in that directory. Durability is off (`fsync=off`): what is
/// tested is the application's behaviour, not the disk's.
pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Postgres {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-faults-pg-")
            .tempdir()
            .unwrap();
        if running_as_root() {
            let (uid, gid) = postgres_uid().expect("checked by available()");
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let postgres = Self {
            port: free_port(),
            dir,
        };
        let data = postgres.data();
        let status = postgres
            .as_postgres(&pg_bin().join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .status()
            .expect("initdb runs");
        assert!(status.success(), "initdb failed");
        postgres.restart();
        postgres
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `program` run as the `postgres` user when we are root, else as ourselves.
    fn as_postgres(&self, program: &Path) -> Command {
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start`, waiting until it accepts connections (after a kill, that
    /// includes crash recovery).
    pub fn restart(&self) {
        let options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.dir.path().display(),
            self.port
        );
        let status = self
            .as_postgres(&pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-o", &options, "-w", "-t", "30", "start"])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl start failed: {}", self.log_tail());
        wait_for_port(self.port, "PostgreSQL");
    }

    fn log_tail(&self) -> String {
        tail(&self.dir.path().join("log"), 20)
    }

    /// The postmaster (from `postmaster.pid`) and every process it started.
    fn pids(&self) -> Vec<u32> {
        let Some(postmaster) = fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
            .filter(|pid| alive(*pid))
        else {
            return Vec::new();
        };
        let mut pids = vec![postmaster];
        pids.extend(children_of(postmaster));
        pids
    }

    /// SIGKILL to the postmaster and all its processes, as a crash would; returns once
    /// they are gone.
    pub fn kill(&self) {
        let pids = self.pids();
        signal(&pids, "KILL");
        let started = Instant::now();
        while pids.iter().any(|pid| alive(*pid)) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "PostgreSQL survived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGSTOP to every process of the cluster: connections stay open, nothing answers.
    pub fn pause(&self) {
        signal(&self.pids(), "STOP");
    }

    pub fn resume(&self) {
        signal(&self.pids(), "CONT");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Killed, not stopped: nothing in it is worth a clean shutdown, and a stopped
        // (SIGSTOP) process cannot stop cleanly anyway. The directory goes with `dir`.
        self.resume();
        self.kill();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---- switchboard -----------------------------------------------------------------

/// The admin every instance is started with.
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A real `switchboard serve` process (the binary cargo built for this test), its
/// log (JSON lines) in a file of its own.
pub struct Instance {
    pub name: &'static str,
    /// Fixed at the first start, so that a restart answers at the same address.
    pub port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Instance {
    pub fn start(name: &'static str, dir: &Path, env: Vec<(String, String)>) -> Self {
        let mut instance = Self {
            name,
            port: 0,
            env,
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        instance.restart();
        instance
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.name);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let before = fs::metadata(&self.log).map_or(0, |m| m.len()) as usize;
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command.arg("serve");
        // Hermetic: the developer's own settings do not leak in.
        for (name, _) in std::env::vars() {
            if name.starts_with("SWITCHBOARD_") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        command
            .env("SWITCHBOARD_BIND", format!("127.0.0.1:{}", self.port))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(command.spawn().expect("switchboard starts"));
        let started = Instant::now();
        loop {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(port) = text.get(before..).and_then(listening_port) {
                self.port = port;
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{} exited ({status}): {}", self.name, tail(&self.log, 30));
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} did not start: {}",
                self.name,
                tail(&self.log, 30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no graceful shutdown, connections reset.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

/// The port of a `{"message":"listening","address":"127.0.0.1:P"}` line.
fn listening_port(log: &str) -> Option<u16> {
    log.lines().find_map(|line| {
        let event: serde_json::Value = serde_json::from_str(line).ok()?;
        let event = event.get("fields").unwrap_or(&event);
        if event["message"] != "listening" {
            return None;
        }
        event["address"].as_str()?.rsplit_once(':')?.1.parse().ok()
    })
}

impl Drop for Instance {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- {} log (last lines) ----\n{}",
                self.name,
                self.log_tail(40)
            );
        }
        self.kill();
    }
}

/// Two (or more) instances on one PostgreSQL and one Redis of the test's own.
/// Fields drop in order: the instances first, then Redis and PostgreSQL, then the
/// directory holding the logs.
pub struct Cluster {
    pub instances: Vec<Instance>,
    pub redis: Redis,
    pub postgres: Postgres,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `None` (skipped, loudly) when the binaries are missing.
    pub fn start(test: &str, instances: usize) -> Option<Self> {
        if !available(test) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("switchboard-faults-")
            .tempdir()
            .unwrap();
        let postgres = Postgres::start();
        let redis = Redis::start();
        let env: Vec<(String, String)> = [
            ("SWITCHBOARD_DATABASE_URL", postgres.url()),
            ("SWITCHBOARD_REDIS_URL", redis.url()),
            ("SWITCHBOARD_ADMIN_EMAIL", ADMIN_EMAIL.to_owned()),
            ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
            ("SWITCHBOARD_DEMO_USERS", "false".to_owned()),
            ("SWITCHBOARD_LOG_FORMAT", "json".to_owned()),
            ("SWITCHBOARD_LOG", "info,sqlx=warn".to_owned()),
            ("SWITCHBOARD_DB_MAX_CONNECTIONS", "8".to_owned()),
            // Limits stay on (they go through Redis), high enough for the test's pace.
            ("SWITCHBOARD_RATE_LOGIN_PER_MINUTE", "1000".to_owned()),
            ("SWITCHBOARD_RATE_WRITE_PER_SECOND", "1000".to_owned()),
            ("SWITCHBOARD_RATE_GENERAL_PER_SECOND", "1000".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let names = ["A", "B", "C"];
        // One after the other: the first applies the migrations and makes the admin.
        let instances = (0..instances)
            .map(|i| Instance::start(names[i], dir.path(), env.clone()))
            .collect();
        Some(Self {
            instances,
            redis,
            postgres,
            _dir: dir,
        })
    }

    pub fn urls(&self) -> Vec<String> {
        self.instances.iter().map(|i| i.url("")).collect()
    }
}
