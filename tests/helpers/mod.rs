//! Shared by every integration test: a small catalog, an engine on a controllable clock, and
//! an in-process HTTP client over the real warp routes (no socket, so tests run in parallel).
#![allow(dead_code)]

pub mod binary;

use std::time::Duration;

use commerce_engine::clock::{Clock, Timestamp};
use commerce_engine::config::Limits;
use commerce_engine::domain::state::EngineState;
use commerce_engine::http::{RouteOptions, routes};
use commerce_engine::kernel::actors::data_platform::Sink;
use commerce_engine::kernel::directory::Passivation;
use commerce_engine::model::Discount;
use commerce_engine::seed::{Seed, SeedCoupon, SeedOption, SeedProduct, SeedUsers};
use commerce_engine::{Engine, EngineConfig};
use serde_json::Value;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const START: &str = "2026-11-24T12:00:00Z";
pub const EXPIRY: Duration = Duration::from_secs(600);
/// Engines opened on a directory archive ended orders this long after they ended.
/// Long enough that no test's engine lives to see an order archived unless it asks for it
/// (the archivist works outside the gate: a move between two reads would differ).
pub const ARCHIVE_AFTER: Duration = Duration::from_secs(3_600);

/// The test catalog:
/// - users 1..=users with `balance` points each;
/// - product 1 "Keyboard" (electronics, 50,000) options 11 "Red" (stock) and 12 "Blue" (5);
/// - product 2 "Mug" (home, 10,000) one option 21 "White" (100);
/// - product 3 "Tent" (sports, 150,000) one option 31 "Standard" (0);
/// - coupon 1 FIXED 3,000 x coupons; coupon 2 PERCENT 10 x 100; coupon 3 expired.
pub fn catalog(users: u64, balance: u64, stock: u64, coupons: u64) -> EngineState {
    let option = |id, name: &str, stock| SeedOption {
        id,
        name: name.into(),
        stock,
    };
    let product = |id, name: &str, category: &str, price, options| SeedProduct {
        id,
        name: name.into(),
        category: category.into(),
        price,
        options,
        purchase_limit: None,
    };
    let coupon = |id, name: &str, discount, quantity, expires_at| SeedCoupon {
        id,
        name: name.into(),
        discount,
        quantity,
        expires_at,
    };
    Seed {
        users: SeedUsers {
            count: users,
            initial_balance: balance,
        },
        products: vec![
            product(
                1,
                "Keyboard",
                "electronics",
                50_000,
                vec![option(11, "Red", stock), option(12, "Blue", 5)],
            ),
            product(2, "Mug", "home", 10_000, vec![option(21, "White", 100)]),
            product(
                3,
                "Tent",
                "sports",
                150_000,
                vec![option(31, "Standard", 0)],
            ),
        ],
        coupons: vec![
            coupon(
                1,
                "3,000 off",
                Discount::Fixed { amount: 3_000 },
                coupons,
                None,
            ),
            coupon(2, "10% off", Discount::Percent { percent: 10 }, 100, None),
            coupon(
                3,
                "Expired",
                Discount::Fixed { amount: 1_000 },
                10,
                Timestamp::parse("2020-01-01T00:00:00Z"),
            ),
        ],
    }
    .into_state(&Limits::default())
    .expect("the test catalog is valid")
}

pub fn config(expiry: Duration) -> EngineConfig {
    EngineConfig {
        limits: Limits::default(),
        order_expiry: expiry,
        sink: Sink::Log,
        call_timeout: Duration::from_secs(30),
        journal: None,
        archive: None,
        archive_after: ARCHIVE_AFTER,
        metrics: Default::default(),
        passivation: Default::default(),
        panics: None,
    }
}

/// An engine on `state` whose clock starts at `START` and follows tokio's clock.
pub async fn engine(state: EngineState) -> Engine {
    engine_with_expiry(state, EXPIRY).await
}

pub async fn engine_with_expiry(state: EngineState, expiry: Duration) -> Engine {
    engine_with_expiry_and(state, expiry, Passivation::default()).await
}

/// The most aggressive passivation: every actor stops after every message, and at most 16 run
/// at once.
pub const EVERY_MESSAGE: Passivation = Passivation {
    after: Duration::ZERO,
    max_running: 16,
};

/// `engine`, with actors passivated as `passivation` says.
pub async fn engine_with(passivation: Passivation, state: EngineState) -> Engine {
    engine_with_expiry_and(state, EXPIRY, passivation).await
}

pub async fn engine_with_expiry_and(
    state: EngineState,
    expiry: Duration,
    passivation: Passivation,
) -> Engine {
    let clock = Clock::starting_at(Timestamp::parse(START).unwrap());
    let config = EngineConfig {
        passivation,
        ..config(expiry)
    };
    Engine::start(config, clock, &state)
        .await
        .expect("engine starts")
}

/// The default small catalog: 10 users with 100,000 points, 50 red keyboards, 30 coupons.
pub async fn small_engine() -> Engine {
    engine(catalog(10, 100_000, 50, 30)).await
}

/// The HTTP API of one engine, driven in process through `warp::test`.
pub struct Api {
    routes: BoxedFilter<(Response,)>,
    token: Option<String>,
}

pub struct Reply {
    pub status: StatusCode,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
    pub content_type: String,
    pub headers: warp::http::HeaderMap,
}

impl Reply {
    /// The error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("<no code>")
    }
}

impl Api {
    pub fn new(engine: &Engine) -> Api {
        Api::with_token(engine, ADMIN_TOKEN)
    }

    pub fn with_token(engine: &Engine, admin_token: &str) -> Api {
        Api::with_options(
            engine,
            RouteOptions {
                body_limit_bytes: 16_384,
                admin_token: admin_token.into(),
                buyers: Default::default(),
                metrics: true,
            },
        )
    }

    pub fn with_options(engine: &Engine, options: RouteOptions) -> Api {
        Api {
            routes: routes(engine.clone(), options),
            token: None,
        }
    }

    /// The same API, sending `Authorization: Bearer <token>`.
    pub fn authorized(&self, token: &str) -> Api {
        Api {
            routes: self.routes.clone(),
            token: Some(token.into()),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body.to_string().into_bytes()))
            .await
    }

    pub async fn post_raw(&self, path: &str, body: &[u8]) -> Reply {
        self.send("POST", path, Some(body.to_vec())).await
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Reply {
        let json = [("content-type", "application/json")];
        let headers: &[(&str, &str)] = if body.is_some() { &json } else { &[] };
        self.send_with(method, path, body, headers).await
    }

    /// A request with exactly these headers (and the token, if any).
    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = warp::test::request().method(method).path(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.reply(&self.routes).await;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        Reply {
            status: response.status(),
            body,
            text: String::from_utf8_lossy(response.body()).into_owned(),
            content_type,
            headers: response.headers().clone(),
        }
    }
}

/// Runs `tasks` futures at once on the multi-threaded runtime and collects their outputs.
pub async fn race<T, F>(tasks: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task panicked"));
    }
    outputs
}

/// Lets every runnable task finish (on a paused clock, time moves 1 ms).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Asserts the engine's audit passes, printing the failing checks if not.
pub async fn assert_audit_ok(engine: &Engine) {
    let report = engine.audit().await.expect("audit runs");
    assert!(
        report.ok,
        "audit failed: {:#?}",
        report.checks.iter().filter(|c| !c.ok).collect::<Vec<_>>()
    );
}

/// Where an engine with a journal keeps its files: `dir`, fsync always, small segments so
/// tests cross segment boundaries, every snapshot kept.
pub fn storage(dir: &std::path::Path) -> commerce_engine::app::Storage {
    commerce_engine::app::Storage {
        journal: commerce_engine::journal::JournalOptions {
            dir: dir.to_path_buf(),
            fsync: commerce_engine::journal::FsyncPolicy::Always,
            fsync_interval: Duration::from_secs(1),
            segment_bytes: 4096,
            keep: 1_000,
        },
        ignore_damage: false,
        faults: None,
    }
}

/// An engine with a journal in `dir`: recovered from what is there, or started from `seed`.
pub async fn open_in(dir: &std::path::Path, seed: EngineState, clock: Clock) -> Engine {
    open_with(config(EXPIRY), storage(dir), seed, clock).await
}

pub async fn open_with(
    config: EngineConfig,
    storage: commerce_engine::app::Storage,
    seed: EngineState,
    clock: Clock,
) -> Engine {
    commerce_engine::app::open(config, storage, clock, move || Ok(seed))
        .await
        .expect("the engine opens on its directory")
}

/// What the live engine holds once its background work (deliveries to the data platform) has
/// settled. Polls every 5 ms, at most 60 s: the guard only turns a hang into a failure.
pub async fn settled(engine: &Engine) -> EngineState {
    for _ in 0..12_000 {
        let state = engine.read_state().await.unwrap();
        if state.data_platform.pending.is_empty() {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the data platform never caught up");
}

/// Asserts that a state rebuilt from disk is the live one. Order ids are recorded by block, so
/// the rebuilt order counter may be ahead of the live one (never behind: no id repeats).
pub fn assert_rebuilt(mut rebuilt: EngineState, live: &EngineState, context: &str) {
    assert!(
        rebuilt.ids.next_order_id >= live.ids.next_order_id,
        "{context}: the order counter went back"
    );
    rebuilt.ids.next_order_id = live.ids.next_order_id;
    assert!(
        rebuilt == *live,
        "{context}: the rebuilt state differs from the live one"
    );
}

/// What a failed handler might leave behind (`Panics`): the entity's state garbled, kind by
/// kind — a balance from nowhere and orders gone, stock gone, a coupon's units and holders
/// gone. A restore must undo all of it.
pub fn garble(state: &mut dyn std::any::Any) {
    use commerce_engine::domain::{coupon::CouponState, product::ProductState, user::UserState};
    if let Some(user) = state.downcast_mut::<UserState>() {
        user.balance = 7;
        user.orders.clear();
        user.coupons.clear();
    } else if let Some(product) = state.downcast_mut::<ProductState>() {
        for option in &mut product.options {
            option.available = 0;
        }
        product.reservations.clear();
    } else if let Some(coupon) = state.downcast_mut::<CouponState>() {
        coupon.remaining = 0;
        coupon.holders.clear();
    }
}
