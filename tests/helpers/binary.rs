//! The real `commerce-engine` binary, started on port 0 over a given snapshot directory, and
//! a small HTTP client for it. The child is killed and reaped when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub const TOKEN: &str = "process-test-token";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub client: reqwest::Client,
    /// The server's log lines (JSON) after the one naming its address.
    pub log: std::sync::Mutex<mpsc::Receiver<String>>,
    /// Where the server's stderr goes (a panic's message, say), for `post_mortem`.
    stderr: tempfile::NamedTempFile,
}

pub fn command(snapshot_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_commerce-engine"));
    command
        .current_dir(snapshot_dir)
        .env("COMMERCE__SERVER__ADDR", "127.0.0.1:0")
        .env("COMMERCE__SNAPSHOT__DIR", snapshot_dir)
        .env("COMMERCE__SNAPSHOT__INTERVAL", "1h")
        // Small preallocated segments: each start writes less.
        .env("COMMERCE__JOURNAL__SEGMENT_BYTES", "1048576")
        .env("COMMERCE__ADMIN__TOKEN", TOKEN)
        .env("COMMERCE__LOG__FORMAT", "json")
        .env(
            "COMMERCE__SEED__PATH",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/seed.toml"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Starts the binary and waits (at most 60 s) for the line that names its port.
pub fn start(snapshot_dir: &Path) -> Server {
    start_command(command(snapshot_dir))
}

/// `start` with a command of the caller's making (from `command`, with more settings).
// The child is reaped by `Server`'s `Drop`, also when a test fails midway.
#[allow(clippy::zombie_processes)]
pub fn start_command(mut command: Command) -> Server {
    let stderr = tempfile::NamedTempFile::new().unwrap();
    command.stderr(stderr.reopen().unwrap());
    let mut child = command.spawn().expect("the server binary starts");
    let stdout = child.stdout.take().unwrap();
    let (lines, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    loop {
        let line = log
            .recv_timeout(Duration::from_secs(60))
            .expect("the server announces its address");
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(addr) = event["fields"]["local_addr"].as_str() {
            return Server {
                child,
                base: format!("http://{addr}"),
                client: reqwest::Client::new(),
                log: log.into(),
                stderr,
            };
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub async fn get(&self, path: &str) -> Value {
        self.json_of(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.try_post(path, body).await.expect("the server answers")
    }

    /// A POST that may never be answered: `None` when the server died first.
    pub async fn try_post(&self, path: &str, body: Value) -> Option<(u16, Value)> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().await.ok()?))
    }

    /// `GET /admin/audit`.
    pub async fn audit(&self) -> Value {
        self.admin_get("/admin/audit").await
    }

    /// `GET /admin/audit?full=true`: the audit that also reads the order archive.
    pub async fn full_audit(&self) -> Value {
        self.admin_get("/admin/audit?full=true").await
    }

    async fn admin_get(&self, path: &str) -> Value {
        let request = self.client.get(format!("{}{path}", self.base));
        self.json_of(request.bearer_auth(TOKEN)).await
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }
}

impl Server {
    /// Sends a request that must be answered, and reads its JSON body. When the server does
    /// not answer, says why: whether it is still running, and its last words.
    async fn json_of(&self, request: reqwest::RequestBuilder) -> Value {
        match request.send().await {
            Ok(response) => response.json().await.unwrap(),
            Err(error) => panic!("{error}; the server: {}", self.post_mortem()),
        }
    }

    fn post_mortem(&self) -> String {
        let status = std::process::Command::new("ps")
            .args(["-o", "stat=", "-p", &self.child.id().to_string()])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .unwrap_or_default();
        let log = self.log.lock().unwrap();
        let lines: Vec<String> = log.try_iter().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        let stderr = std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
        format!(
            "process state `{status}` (empty: gone); its last log lines:\n{tail}\nits stderr:\n{stderr}"
        )
    }
}
