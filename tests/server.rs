//! The real server over a real socket: `app::start` on port 0 with the shipped demo seed,
//! spoken to with an HTTP client, then shut down in order (final snapshot included), also with
//! a client that never finishes its request.

mod helpers;

use commerce_engine::app;
use commerce_engine::config::Settings;
use serde_json::{Value, json};

fn settings(snapshot_dir: &std::path::Path) -> Settings {
    let mut settings = Settings::default();
    settings.server.addr = "127.0.0.1:0".parse().unwrap();
    settings.seed.path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/seed.toml").into();
    settings.admin.token = helpers::ADMIN_TOKEN.into();
    settings.snapshot.dir = snapshot_dir.to_path_buf();
    settings.journal.segment_bytes = 1 << 20;
    settings
}

/// Sends a request and reads its JSON body.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_catalog_is_served_on_a_real_port() {
    let dir = tempfile::tempdir().unwrap();
    let running = app::start(&settings(dir.path()), app::StartOptions::default())
        .await
        .unwrap();
    let base = format!("http://{}", running.local_addr);
    let client = reqwest::Client::new();

    let health = json_of(client.get(format!("{base}/health"))).await;
    assert_eq!(health, json!({"status": "ok"}));
    let products = json_of(client.get(format!("{base}/products?size=100"))).await;
    assert_eq!(products["total"], 20);

    let order = client
        .post(format!("{base}/orders"))
        .json(&json!({"user_id": 7, "items": [{"product_id": 6, "option_id": 111, "quantity": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), 201);
    let order: Value = order.json().await.unwrap();
    let paid = client
        .post(format!("{base}/orders/{}/payment", order["order_id"]))
        .json(&json!({"user_id": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);

    let not_found = client.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(not_found.status(), 404);
    assert!(
        not_found.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    let audit_request = client.get(format!("{base}/admin/audit"));
    let audit = json_of(audit_request.bearer_auth(helpers::ADMIN_TOKEN)).await;
    assert_eq!(audit["ok"], true, "{audit}");

    running.shutdown().await.unwrap();
    assert!(
        client.get(format!("{base}/health")).send().await.is_err(),
        "no longer accepting"
    );
    let snapshots = commerce_engine::snapshot::list(dir.path()).unwrap();
    let sequences: Vec<u64> = snapshots.iter().map(|file| file.0).collect();
    assert_eq!(sequences, [2, 1], "the seed's snapshot, then the final one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_even_with_a_slow_client() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let running = app::start(&settings(dir.path()), app::StartOptions::default())
        .await
        .unwrap();
    // A client that starts a request and never finishes its body.
    let mut slow = tokio::net::TcpStream::connect(running.local_addr)
        .await
        .unwrap();
    let head =
        "POST /users/1/points/charge HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"amo";
    slow.write_all(head.as_bytes()).await.unwrap();
    // Without the drain bound this would wait for the client forever; the 60 s guard only
    // turns such a hang into a failure, it does not time the shutdown.
    let shutdown = running.shutdown_within(std::time::Duration::from_millis(200));
    let finished = tokio::time::timeout(std::time::Duration::from_secs(60), shutdown).await;
    finished
        .expect("shutdown finished despite the slow client")
        .unwrap();
    let snapshots = commerce_engine::snapshot::list(dir.path()).unwrap();
    assert_eq!(snapshots[0].0, 2, "and wrote the final snapshot");
}

#[tokio::test]
async fn a_missing_seed_is_a_clear_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path());
    settings.seed.path = "/nonexistent/seed.toml".into();
    let error = app::start(&settings, app::StartOptions::default())
        .await
        .err()
        .expect("refuses to start");
    assert!(
        error.to_string().contains("/nonexistent/seed.toml"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_flushed_periodically_and_only_the_newest_snapshot_files_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path());
    settings.snapshot.interval = std::time::Duration::from_millis(50);
    settings.snapshot.keep = 2;
    let running = app::start(&settings, app::StartOptions::default())
        .await
        .unwrap();
    // Waits for three periodic flushes (the first start's snapshot counts one more); the guard
    // only turns a hang into a failure.
    let flushes = async {
        loop {
            let text = running.engine.metrics_text();
            let count = text
                .lines()
                .find_map(|line| line.strip_prefix("commerce_snapshot_duration_seconds_count "))
                .and_then(|count| count.trim().parse::<u64>().ok());
            if count.is_some_and(|count| count >= 4) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), flushes)
        .await
        .expect("the store is flushed periodically");
    assert_eq!(
        commerce_engine::snapshot::list(dir.path()).unwrap().len(),
        1,
        "a flush writes no snapshot file: only the seed's is there"
    );
    running.engine.snapshot().await.unwrap();
    running.engine.snapshot().await.unwrap();
    running.shutdown().await.unwrap();
    let files = commerce_engine::snapshot::list(dir.path()).unwrap();
    let sequences: Vec<u64> = files.iter().map(|file| file.0).collect();
    assert_eq!(sequences, [4, 3], "snapshot.keep = 2 keeps the newest two");
}
