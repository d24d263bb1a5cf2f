//! The real `commerce-engine` binary on port 0 with a temporary snapshot directory: after
//! `kill -9` a restart has everything that was acknowledged (the last snapshot and the journal
//! after it); after SIGTERM too; over unreadable snapshots it refuses to start unless told
//! otherwise.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const TOKEN: &str = "process-test-token";

struct Server {
    child: Child,
    base: String,
    client: reqwest::Client,
}

fn command(snapshot_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_commerce-engine"));
    command
        .current_dir(snapshot_dir)
        .env("COMMERCE__SERVER__ADDR", "127.0.0.1:0")
        .env("COMMERCE__SNAPSHOT__DIR", snapshot_dir)
        .env("COMMERCE__SNAPSHOT__INTERVAL", "1h")
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
// The child is reaped by `Server`'s `Drop`, also when a test fails midway.
#[allow(clippy::zombie_processes)]
fn start(snapshot_dir: &Path) -> Server {
    let mut child = command(snapshot_dir)
        .spawn()
        .expect("the server binary starts");
    let stdout = child.stdout.take().unwrap();
    let (lines, listening) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    loop {
        let line = listening
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
    async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    server
        .post("/users/1/points/charge", json!({"amount": 1_000}))
        .await;
    let (status, order) = server
        .post(
            "/orders",
            json!({"user_id": 2, "items": [{"product_id": 6, "option_id": 110, "quantity": 3}]}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, snapshot) = server.post("/admin/snapshot", json!({})).await;
    assert_eq!(status, 200, "{snapshot}");
    assert_eq!(
        snapshot["sequence"], 2,
        "the first start wrote snapshot 1 of the seed"
    );
    for field in ["path", "bytes", "entities", "took_ms"] {
        assert!(
            snapshot.get(field).is_some(),
            "snapshot reply lacks {field}"
        );
    }
    let (status, _) = server
        .post("/users/1/points/charge", json!({"amount": 2_000}))
        .await; // after the snapshot: in the journal only
    assert_eq!(status, 200);
    server.child.kill().unwrap(); // SIGKILL: no final snapshot
    server.child.wait().unwrap();

    let mut restarted = start(dir.path());
    assert_eq!(restarted.get("/users/1/points").await["balance"], 103_000);
    let order_id = order["order_id"].as_u64().unwrap();
    let restored = restarted.get(&format!("/orders/{order_id}")).await;
    assert_eq!(
        (restored["status"].clone(), restored["expires_at"].clone()),
        (json!("PENDING"), order["expires_at"].clone())
    );
    assert_eq!(
        restarted.get("/products/6").await["options"][0]["stock"],
        97
    );
    let (_, next) = restarted.post("/admin/snapshot", json!({})).await;
    assert_eq!(next["sequence"], 3, "the sequence continues");
    assert!(restarted.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    server.post("/coupons/2/issue", json!({"user_id": 3})).await;
    let (_, order) = server
        .post(
            "/orders",
            json!({"user_id": 3, "items": [{"product_id": 14, "option_id": 128, "quantity": 2}]}),
        )
        .await;
    let order_id = order["order_id"].as_u64().unwrap();
    let (status, paid) = server
        .post(
            &format!("/orders/{order_id}/payment"),
            json!({"user_id": 3, "coupon_id": 2}),
        )
        .await;
    assert_eq!(status, 200, "{paid}");
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    let mut restarted = start(dir.path());
    assert_eq!(
        restarted.get("/users/3/points").await["balance"],
        paid["balance"]
    );
    assert_eq!(
        restarted.get(&format!("/orders/{order_id}")).await["status"],
        "PAID"
    );
    assert_eq!(
        restarted.get("/users/3/coupons").await["coupons"][0]["status"],
        "USED"
    );
    let popular = restarted.get("/products/popular").await;
    assert_eq!(popular["items"][0]["product_id"], 14);
    let audit = restarted
        .client
        .get(format!("{}/admin/audit", restarted.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(audit.json::<Value>().await.unwrap()["ok"], true);
    assert!(restarted.terminate().success());
}

#[test]
fn unreadable_snapshots_stop_the_start_unless_overridden() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("snapshot-00000000000000000001.bin"),
        b"not a snapshot at all, just some bytes that are long enough for a header",
    )
    .unwrap();
    let refused = command(dir.path()).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("refusing to start"), "{stderr}");
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(
        stdout.contains("snapshot-00000000000000000001.bin") && stdout.contains("magic"),
        "the file and reason are logged: {stdout}"
    );

    let mut overridden = command(dir.path());
    overridden.arg("--ignore-unreadable-snapshots");
    let mut child = overridden.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("local_addr"));
    assert!(started, "starts from the seed with the override");
    child.kill().unwrap();
    child.wait().unwrap();
}
