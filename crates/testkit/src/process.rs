//! `kassa` processes for tests that run the binary: [`Proc`] starts one with its output in a log
//! file, stops it (Ctrl-C or kill -9), and prints the log's tail if the test fails; [`Api`]
//! reads and waits on a node's HTTP API. Every wait is bounded.

use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Runs `bin ARGS` to its end; panics with its standard error unless it succeeds; its standard
/// output, as JSON.
pub fn run_json<S: AsRef<OsStr>>(bin: &str, args: &[S]) -> Value {
    let out = Command::new(bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `bin testnet init` of four validators in `dir`, a block every `block_ms`, their APIs from
/// loopback port `http`, p2p from `p2p` and hosting for followers from `host` on (the
/// follower's API and hosting on the fifth port of each).
pub fn testnet_init(bin: &str, dir: &Path, block_ms: u64, http: u16, p2p: u16, host: u16) {
    let out = Command::new(bin)
        .args(["testnet", "init", "--validators", "4", "--block-ms"])
        .arg(block_ms.to_string())
        .arg("--dir")
        .arg(dir)
        .args([
            "--http-port",
            &http.to_string(),
            "--p2p-port",
            &p2p.to_string(),
            "--host-port",
            &host.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "testnet init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Longest any wait here lasts.
pub const LIMIT: Duration = Duration::from_secs(90);

/// The last `lines` lines of a process's log, for a failure message.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = log.lines().collect();
    format!(
        "--- {} (last {lines} lines) ---\n{}",
        path.display(),
        all[all.len().saturating_sub(lines)..].join("\n")
    )
}

/// One running process, stopped when dropped (Ctrl-C, then kill). Its standard output and error
/// are appended to `log`, whose tail is printed if the test is failing when it is dropped.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Starts `bin ARGS` with its output appended to `log`.
    pub fn spawn<S: AsRef<OsStr>>(bin: &str, args: &[S], log: PathBuf) -> Proc {
        Proc::spawn_with_env(bin, args, &[], log)
    }

    /// [`Proc::spawn`] with `env` added to the environment.
    pub fn spawn_with_env<S: AsRef<OsStr>>(
        bin: &str,
        args: &[S],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Proc {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        Proc {
            child: Some(child),
            log,
        }
    }

    /// `bin node --dev` on `data`, its API on loopback `port` and p2p on `port + 1`, a block every
    /// `block_ms`, with `extra` arguments, logging to `log`.
    pub fn dev_node(
        bin: &str,
        data: &Path,
        port: u16,
        block_ms: u64,
        extra: &[&str],
        log: PathBuf,
    ) -> Proc {
        let mut args: Vec<OsString> = vec!["node".into(), "--dev".into(), "--block-ms".into()];
        args.push(block_ms.to_string().into());
        args.extend(["--data-dir".into(), data.as_os_str().to_owned()]);
        args.extend(["--http".into(), format!("127.0.0.1:{port}").into()]);
        args.extend(["--p2p".into(), format!("127.0.0.1:{}", port + 1).into()]);
        args.extend(extra.iter().map(OsString::from));
        Proc::spawn(bin, &args, log)
    }

    /// `bin node --config CONFIG`, logging beside the config (`x.toml` → `x.log`).
    pub fn node(bin: &str, config: &Path) -> Proc {
        Proc::spawn(
            bin,
            &[
                OsStr::new("node"),
                OsStr::new("--config"),
                config.as_os_str(),
            ],
            config.with_extension("log"),
        )
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log, 60)
    }

    /// Kills the process at once (SIGKILL), as a power cut would.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().expect("running");
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// Waits up to `limit` for the process to exit by itself; its status, or `None` if it is
    /// still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let c = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-C (SIGINT), and waits for the exit.
    pub fn interrupt(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let sent = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop on Ctrl-C\n{}",
                self.log.display(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_millis(500));
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A node's HTTP API, read as JSON.
#[derive(Clone, Debug)]
pub struct Api(pub String);

impl Api {
    /// The API on a loopback port.
    pub fn at(port: u16) -> Api {
        Api(format!("http://127.0.0.1:{port}"))
    }

    /// `GET path`, or `None` if the node does not answer it with JSON (not up, or a 404 page).
    pub fn try_get(&self, path: &str) -> Option<Value> {
        let mut r = ureq::get(format!("{}{path}", self.0)).call().ok()?;
        r.body_mut().read_json().ok()
    }

    pub fn get(&self, path: &str) -> Value {
        let mut r = ureq::get(format!("{}{path}", self.0))
            .call()
            .unwrap_or_else(|e| panic!("GET {}{path}: {e}", self.0));
        r.body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("GET {}{path}: not JSON: {e}", self.0))
    }

    pub fn post(&self, path: &str, body: &Value) -> Value {
        let mut r = ureq::post(format!("{}{path}", self.0))
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {}{path}: {e}", self.0));
        r.body_mut().read_json().unwrap()
    }

    /// `GET /metrics`: the Prometheus text.
    pub fn metrics(&self) -> String {
        ureq::get(format!("{}/metrics", self.0))
            .call()
            .unwrap_or_else(|e| panic!("GET {}/metrics: {e}", self.0))
            .body_mut()
            .read_to_string()
            .unwrap()
    }

    /// The status once `done` holds for it, polling every 100 ms for at most `limit`.
    pub fn wait_status(&self, limit: Duration, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_get("/api/v1/status")
                && done(&s)
            {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}: timed out on {}", self.0);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn height(&self) -> u64 {
        self.try_get("/api/v1/status")
            .and_then(|s| s["height"].as_u64())
            .unwrap_or(0)
    }

    /// Waits until the node's height reaches `h`.
    pub fn wait_height(&self, h: u64, what: &str) {
        self.wait_status(LIMIT, what, |s| s["height"].as_u64().unwrap_or(0) >= h);
    }

    /// Waits for a transaction's receipt here (unknown here until it is relayed, forwarded or
    /// synced).
    pub fn receipt(&self, hash: &str) -> Value {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(v) = self.try_get(&format!("/api/v1/txs/{hash}"))
                && (v["status"] == "applied" || v["status"] == "failed")
            {
                return v;
            }
            assert!(Instant::now() < deadline, "{hash} not final on {}", self.0);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asks the faucet to pay `to`; returns the drip's transaction hash.
    pub fn drip(&self, to: &kassa_types::SecretKey) -> String {
        let body = serde_json::json!({"address": to.address().to_bech32()});
        let v = self.post("/api/v1/faucet", &body);
        v["hash"].as_str().expect("a transaction hash").to_string()
    }

    /// (block hash, state root) at height `h`.
    pub fn block(&self, h: u64) -> (Value, Value) {
        let b = self.get(&format!("/api/v1/blocks/{h}"));
        (b["hash"].clone(), b["state_root"].clone())
    }
}
