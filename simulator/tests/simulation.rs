//! The simulator as a test: fixed seeds on a small catalog, embedded and over HTTP against a
//! server on port 0, the binary's exit status, and a shop that lies about a charge to prove the
//! simulator's audit catches a broken invariant.

use std::time::Duration;

use commerce_engine::app;
use commerce_engine::audit::AuditReport;
use commerce_engine::clock::Clock;
use commerce_engine::config::{AuthMode, Limits, Settings};
use commerce_engine::engine::OrderLine;
use commerce_engine::http::types::{Coupon, Product};
use commerce_engine::model::OrderStatus;
use commerce_engine::{Engine, EngineConfig};
use commerce_simulator::report::Kind;
use commerce_simulator::shop::{Outcome, Shop};
use commerce_simulator::{Options, Scenario};

const ADMIN_TOKEN: &str = "simulation-test-admin-token";

fn small(seed: u64) -> Options {
    Options {
        buyers: 60,
        seed: Some(seed),
        users: 30,
        products: 6,
        coupons: 3,
        expiry: Duration::from_millis(100),
        operations_per_buyer: Some(40),
        duration: Duration::from_secs(600),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_run_keeps_every_invariant() {
    for seed in [1, 2, 3] {
        let report = commerce_simulator::run(&small(seed)).await.unwrap();
        assert!(report.ok, "seed {seed}:\n{report}");
        // Each buyer stops at its budget; its last step (order, pay, charge, pay) may add three.
        assert!(
            (60 * 40..=60 * 43).contains(&report.operations),
            "{}",
            report.operations
        );
        assert!(
            report
                .checks
                .iter()
                .any(|check| check.name == "engine_audit" && check.ok)
        );
        let codes: Vec<_> = report
            .outcomes
            .iter()
            .map(|(_, code, _)| code.as_str())
            .collect();
        assert!(codes.contains(&"success"));
        assert!(report.rerun.contains(&format!("--seed {seed}")));
    }
}

/// A server on port 0 with the demo seed; `jwt_secret` turns on `auth.mode = "jwt"`.
async fn server(dir: &std::path::Path, jwt_secret: Option<&str>) -> app::Running {
    let mut settings = Settings::default();
    settings.server.addr = "127.0.0.1:0".parse().unwrap();
    settings.seed.path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/seed.toml").into();
    settings.snapshot.dir = dir.to_path_buf();
    settings.admin.token = ADMIN_TOKEN.into();
    // Ended orders move to the archive while buyers shop.
    settings.order.archive_after = Duration::from_millis(20);
    if let Some(secret) = jwt_secret {
        settings.auth.mode = AuthMode::Jwt;
        settings.auth.jwt_secret = secret.into();
    }
    app::start(&settings, app::StartOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_run_against_a_real_server_keeps_every_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path(), None).await;
    let options = Options {
        target: Some(format!("http://{}", running.local_addr)),
        admin_token: Some(ADMIN_TOKEN.into()),
        users: 40,
        coupons: 5,
        buyers: 40,
        operations_per_buyer: Some(25),
        ..small(7)
    };
    let report = commerce_simulator::run(&options).await.unwrap();
    assert!(report.ok, "{report}");
    assert_eq!(report.mode, "http");
    assert!(
        report
            .checks
            .iter()
            .any(|check| check.name == "engine_audit" && check.ok)
    );
    // The full audit, over memory and the archive, after the run.
    let state = running.engine.read_state().await.unwrap();
    assert!(state.archived_orders > 0, "the run archived nothing");
    let full = running.engine.audit_with_archive().await.unwrap();
    assert!(full.ok, "{}", full.failures());
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_jwt_secret_the_simulator_drives_a_server_in_jwt_mode() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "simulation-secret";
    let running = server(dir.path(), Some(secret)).await;
    let options = Options {
        target: Some(format!("http://{}", running.local_addr)),
        admin_token: Some(ADMIN_TOKEN.into()),
        jwt_secret: Some(secret.into()),
        users: 20,
        coupons: 5,
        buyers: 20,
        operations_per_buyer: Some(20),
        ..small(8)
    };
    let report = commerce_simulator::run(&options).await.unwrap();
    assert!(report.ok, "{report}");
    let codes: Vec<_> = report
        .outcomes
        .iter()
        .map(|(_, code, _)| code.as_str())
        .collect();
    assert!(codes.contains(&"success"), "{report}");
    assert!(!codes.contains(&"UNAUTHORIZED"), "{report}");
    assert!(!codes.contains(&"FORBIDDEN"), "{report}");
    running.shutdown().await.unwrap();
}

#[test]
fn the_binary_reports_and_exits_zero() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args([
            "--buyers",
            "20",
            "--operations-per-buyer",
            "20",
            "--seed",
            "5",
            "--users",
            "10",
        ])
        .args([
            "--products",
            "4",
            "--coupons",
            "2",
            "--expiry",
            "50ms",
            "--quiet",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "goodput: ",
        "payments/s",
        "refused: ",
        "p99 us",
        "outcomes:",
        "ALL INVARIANTS HOLD",
        "rerun: cargo run --release --bin simulate -- --scenario flash-sale --seed 5",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_simulate"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for option in [
        "--buyers",
        "--duration",
        "--seed",
        "--target",
        "--users",
        "--products",
        "--coupons",
        "--expiry",
        "--scenario",
        "--json",
        "--jwt-secret",
    ] {
        assert!(help.contains(option), "--help documents {option}");
    }
}

#[test]
fn the_binary_writes_the_json_report_of_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(["--scenario", "steady", "--buyers", "10"])
        .args(["--operations-per-buyer", "20", "--seed", "3", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("goodput"));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for key in [
        "seed",
        "mode",
        "buyers",
        "duration_s",
        "goodput",
        "operations",
    ] {
        assert!(!report[key].is_null(), "{key} in {report}");
    }
    assert_eq!(report["scenario"], "steady");
    assert_eq!(report["ok"], true);
    assert!(report["goodput"]["payments_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["operations"]["pay"]["p99_us"].is_u64());
    assert!(report["outcomes"]["pay"]["success"].as_u64().unwrap() > 0);
    assert_eq!(report["invariants"][0]["ok"], true);
    // Without --users, each steady buyer is its own user: no TOO_MANY_PENDING_ORDERS.
    assert_eq!(report["refusals"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_steady_scenario_orders_and_pays_without_refusals() {
    let options = Options {
        scenario: Scenario::Steady,
        buyers: 40,
        users: 40,
        ..small(11)
    };
    let report = commerce_simulator::run(&options).await.unwrap();
    assert!(report.ok, "{report}");
    assert_eq!(report.refusals(), 0, "{report}");
    // Nineteen in twenty orders are paid, the rest cancelled: no other operation.
    let (orders, payments) = (report.successes(Kind::Order), report.successes(Kind::Pay));
    assert_eq!(orders, payments + report.successes(Kind::Cancel));
    assert!(
        payments * 10 > orders * 8,
        "{orders} orders, {payments} paid"
    );
    assert_eq!(
        report.successes(Kind::Browse) + report.successes(Kind::Charge),
        0
    );
}

/// An engine that claims every third charge succeeded without making it.
#[derive(Clone)]
struct LyingShop {
    engine: Engine,
    calls: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Shop for LyingShop {
    async fn charge(&self, user_id: u64, amount: u64) -> Outcome<u64> {
        let call = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if call.is_multiple_of(3) {
            return Ok(0);
        }
        self.engine
            .charge(user_id, amount)
            .await
            .map_err(|_| "LIE".into())
    }
    async fn browse(&self, category: Option<String>, in_stock: bool) -> Outcome<usize> {
        Shop::browse(&self.engine, category, in_stock).await
    }
    async fn issue_coupon(&self, coupon_id: u64, user_id: u64) -> Outcome<()> {
        Shop::issue_coupon(&self.engine, coupon_id, user_id).await
    }
    async fn place_order(&self, user_id: u64, lines: Vec<OrderLine>) -> Outcome<(u64, u64)> {
        Shop::place_order(&self.engine, user_id, lines).await
    }
    async fn pay(&self, order_id: u64, user_id: u64, coupon_id: Option<u64>) -> Outcome<u64> {
        Shop::pay(&self.engine, order_id, user_id, coupon_id).await
    }
    async fn cancel(&self, order_id: u64, user_id: u64) -> Outcome<()> {
        Shop::cancel(&self.engine, order_id, user_id).await
    }
    async fn balance(&self, user_id: u64) -> Outcome<u64> {
        Shop::balance(&self.engine, user_id).await
    }
    async fn order_status(&self, order_id: u64, user_id: u64) -> Outcome<OrderStatus> {
        Shop::order_status(&self.engine, order_id, user_id).await
    }
    async fn catalog(&self) -> Outcome<Vec<Product>> {
        Shop::catalog(&self.engine).await
    }
    async fn coupon(&self, coupon_id: u64) -> Outcome<Coupon> {
        Shop::coupon(&self.engine, coupon_id).await
    }
    async fn engine_audit(&self) -> Option<Outcome<AuditReport>> {
        Shop::engine_audit(&self.engine).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_catches_a_broken_invariant() {
    let options = small(11);
    let state = commerce_simulator::embedded_catalog(&options, 11)
        .into_state(&Limits::default())
        .unwrap();
    let config = EngineConfig {
        order_expiry: options.expiry,
        ..EngineConfig::default()
    };
    let engine = Engine::start(config, Clock::system(), &state)
        .await
        .unwrap();
    let shop = LyingShop {
        engine,
        calls: Default::default(),
    };
    let report = commerce_simulator::simulate(shop, &options, 11, "lying")
        .await
        .unwrap();
    assert!(!report.ok, "a lie about money must be caught:\n{report}");
    let money = report
        .checks
        .iter()
        .find(|check| check.name == "money")
        .unwrap();
    assert!(
        !money.ok && money.detail.contains("charged"),
        "{}",
        money.detail
    );
    assert!(report.to_string().contains("INVARIANT VIOLATED"));
}
