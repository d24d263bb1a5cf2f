//! The real server over a real socket: `app::start` on port 0 with the shipped demo seed,
//! spoken to with an HTTP client, then shut down in order while a request is in flight.

mod helpers;

use commerce_engine::app;
use commerce_engine::config::Settings;
use serde_json::{Value, json};

fn settings() -> Settings {
    let mut settings = Settings::default();
    settings.server.addr = "127.0.0.1:0".parse().unwrap();
    settings.seed.path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/seed.toml").into();
    settings.admin.token = helpers::ADMIN_TOKEN.into();
    settings.snapshot.dir =
        std::env::temp_dir().join(format!("commerce-server-test-{}", std::process::id()));
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_catalog_is_served_on_a_real_port() {
    let running = app::start(&settings(), app::StartOptions::default())
        .await
        .unwrap();
    let base = format!("http://{}", running.local_addr);
    let client = reqwest::Client::new();

    let health: Value = client
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    let products: Value = client
        .get(format!("{base}/products?size=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

    let audit: Value = client
        .get(format!("{base}/admin/audit"))
        .bearer_auth(helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["ok"], true, "{audit}");

    running.shutdown().await.unwrap();
    assert!(
        client.get(format!("{base}/health")).send().await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn a_missing_seed_is_a_clear_start_error() {
    let mut settings = settings();
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
