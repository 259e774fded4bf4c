//! Servers under test as child processes: `runledger serve` (this build's binary, next to the
//! benchmark's) and PostGraphile (Node.js), each on a free loopback port, waited for until it
//! answers, stopped with SIGTERM, and asked for its peak resident memory (VmHWM in
//! /proc/<pid>/status, so it covers the whole life of the process).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process.
pub struct Server {
    pub name: String,
    child: Child,
    pub base: String,
}

impl Server {
    /// Peak resident set size so far, in bytes (VmHWM).
    pub fn peak_memory(&self) -> Result<u64, String> {
        self.memory("VmHWM")
    }

    /// Resident set size now, in bytes (VmRSS).
    pub fn resident_memory(&self) -> Result<u64, String> {
        self.memory("VmRSS")
    }

    /// A memory field of /proc/<pid>/status, in bytes.
    fn memory(&self, field: &str) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| format!("read memory of {}: {e}", self.name))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| format!("no {field} for {}", self.name))
    }

    /// SIGTERM, then wait (a graceful shutdown writes the final checkpoint).
    pub fn stop(mut self) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.child.try_wait().map_err(|e| e.to_string())?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        Err(format!("{} did not stop within 60 s", self.name))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// The `runledger` binary built next to this benchmark.
pub fn runledger_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = exe.with_file_name("runledger");
    if !bin.exists() {
        return Err(format!(
            "{} is missing: build it with `cargo build --release -p runledger -p runledger-bench`",
            bin.display()
        ));
    }
    Ok(bin)
}

/// Runs `runledger <args>` to completion and returns its stdout.
pub fn runledger(args: &[&str]) -> Result<String, String> {
    let out = Command::new(runledger_binary()?)
        .args(args)
        .env("RUNLEDGER_LOG", "warn")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "runledger {} failed: {}",
            args.join(" "),
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until `url` answers 200 to a GET (or, with `graphql`, to a `{ __typename }` POST):
/// the server has started. Fails after a minute or when the process exits.
async fn wait_ready(name: &str, child: &mut Child, url: &str, graphql: bool) -> Result<(), String> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("{name} exited while starting: {status}"));
        }
        let probe = if graphql {
            client
                .post(url)
                .header("content-type", "application/json")
                .body(r#"{"query":"{ __typename }"}"#)
        } else {
            client.get(url)
        };
        if let Ok(r) = probe.send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{name} did not answer {url} within 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `runledger serve` over `database_url` with `/metrics` on and rate limiting off (the load
/// comes from one key); everything else as shipped. Logs go to `log`.
pub async fn start_runledger(
    database_url: &str,
    key_file: &Path,
    log: &Path,
) -> Result<Server, String> {
    start_runledger_binary(&runledger_binary()?, database_url, key_file, log).await
}

/// Like [`start_runledger`], with the `runledger` binary at `binary` (another build).
pub async fn start_runledger_binary(
    binary: &Path,
    database_url: &str,
    key_file: &Path,
    log: &Path,
) -> Result<Server, String> {
    start_runledger_with(binary, database_url, key_file, log, &[]).await
}

/// Like [`start_runledger_binary`], with more `serve` flags.
pub async fn start_runledger_with(
    binary: &Path,
    database_url: &str,
    key_file: &Path,
    log: &Path,
    extra: &[&str],
) -> Result<Server, String> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let mut child = Command::new(binary)
        .args(["serve", "--database-url", database_url, "--listen", &listen])
        .args(["--metrics", "--rate-limit-per-second", "0"])
        .arg("--signing-key-file")
        .arg(key_file)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| e.to_string())?;
    let base = format!("http://{listen}");
    wait_ready("runledger", &mut child, &format!("{base}/readyz"), false).await?;
    Ok(Server {
        name: "runledger".into(),
        child,
        base,
    })
}

/// PostGraphile 5 over `database_url`, installed first by `bench/postgraphile/install.sh`
/// (into the git-ignored `bench/.peer`) and run with the Node.js 22 it installs, in production
/// mode. Logs go to `log`.
pub async fn start_postgraphile(
    repo: &Path,
    database_url: &str,
    log: &Path,
) -> Result<Server, String> {
    let peer = repo.join("bench/postgraphile");
    let out = Command::new(peer.join("install.sh"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("bench/postgraphile/install.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "bench/postgraphile/install.sh failed: {}",
            out.status
        ));
    }
    let node = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let port = free_port()?;
    let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let mut child = Command::new(&node)
        .arg(repo.join("bench/.peer/node_modules/postgraphile/dist/cli-run.js"))
        .arg("-C")
        .arg(peer.join("graphile.config.mjs"))
        .env("DATABASE_URL", database_url)
        .env("PORT", port.to_string())
        .env("NODE_ENV", "production")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{node}: {e}"))?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready("PostGraphile", &mut child, &format!("{base}/graphql"), true).await?;
    Ok(Server {
        name: "PostGraphile".into(),
        child,
        base,
    })
}

/// A counter from a runledger `/metrics` page.
pub async fn metric(server: &Server, name: &str) -> Result<u64, String> {
    let text = reqwest::get(format!("{}/metrics", server.base))
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .ok_or_else(|| format!("{name} is not in /metrics"))
}
