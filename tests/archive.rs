//! The order archive through the engine and the HTTP routes: ended orders leave memory
//! `archive_after` after they ended, read back identically through every endpoint, keep every
//! running total and both audits right, survive restarts, and a crash between storing and
//! recording a move leaves them in one place, never two and never none.

mod helpers;

use std::time::Duration;

use commerce_engine::archive::Archive;
use commerce_engine::clock::Clock;
use commerce_engine::domain::state::EngineState;
use commerce_engine::engine::OrderLine;
use commerce_engine::{Engine, EngineConfig};
use helpers::{Api, catalog, open_with, storage};
use serde_json::{Value, json};

const ARCHIVE_AFTER: Duration = Duration::from_millis(100);
const EXPIRY: Duration = Duration::from_millis(500);

fn config() -> EngineConfig {
    let mut config = helpers::config(EXPIRY);
    config.archive_after = ARCHIVE_AFTER;
    config
}

fn seed() -> EngineState {
    catalog(5, 100_000, 50, 30)
}

async fn open(dir: &std::path::Path) -> Engine {
    open_with(config(), storage(dir), seed(), Clock::system()).await
}

fn mug(quantity: u64) -> Vec<OrderLine> {
    vec![OrderLine {
        product_id: 2,
        option_id: Some(21),
        quantity,
    }]
}

/// Polls (every 5 ms, at most 60 s) until `count` orders have left memory, user `user_id`
/// holding none. (The state reads users before the count, so the count may run ahead.)
async fn archived(engine: &Engine, count: u64, user_id: u64) -> EngineState {
    for _ in 0..12_000 {
        let state = engine.read_state().await.unwrap();
        if state.archived_orders >= count && state.users[&user_id].orders.is_empty() {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{count} orders were never archived");
}

async fn get(api: &Api, path: &str) -> Value {
    let reply = api.get(path).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.body
}

async fn assert_full_audit_ok(engine: &Engine) {
    let report = engine.audit_with_archive().await.unwrap();
    assert!(report.ok, "{}", report.failures());
    helpers::assert_audit_ok(engine).await;
}

/// The orders of the round-trip test, and the JSON of two of them before they moved.
struct Placed {
    paid: u64,
    cancelled: u64,
    expiring: u64,
    pending: u64,
    before: [Value; 2],
}

/// Every read of the round-trip test, on `engine`, which it hands back.
async fn check(engine: Engine, placed: &Placed) -> Engine {
    let Placed {
        paid,
        cancelled,
        expiring,
        pending,
        before,
    } = placed;
    let (paid, cancelled, expiring, pending) = (*paid, *cancelled, *expiring, *pending);
    let api = Api::new(&engine);
    assert_eq!(get(&api, &format!("/orders/{paid}")).await, before[0]);
    assert_eq!(get(&api, &format!("/orders/{cancelled}")).await, before[1]);
    let expired = get(&api, &format!("/orders/{expiring}")).await;
    assert_eq!(expired["status"], "EXPIRED");
    // Newest first across memory and archive.
    let page = get(&api, "/users/1/orders?limit=2").await;
    let ids: Vec<_> = page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| order["order_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [pending, expiring]);
    assert_eq!(page["next_before"], expiring);
    let rest = get(&api, &format!("/users/1/orders?limit=2&before={expiring}")).await;
    assert_eq!(rest["orders"].as_array().unwrap().len(), 2);
    assert_eq!(rest["orders"][0], before[1]);
    assert_eq!(rest["orders"][1], before[0]);
    assert_eq!(rest["next_before"], Value::Null);
    // Ended is ended, wherever the order is; someone else's is not found.
    let again = api
        .post(&format!("/orders/{paid}/payment"), json!({"user_id": 1}))
        .await;
    assert_eq!(again.code(), "ORDER_ALREADY_PAID");
    let expired_pay = api
        .post(
            &format!("/orders/{expiring}/payment"),
            json!({"user_id": 1}),
        )
        .await;
    assert_eq!(expired_pay.code(), "ORDER_EXPIRED");
    let cancel = api
        .post(
            &format!("/orders/{cancelled}/cancel"),
            json!({"user_id": 1}),
        )
        .await;
    assert_eq!(cancel.code(), "ORDER_NOT_CANCELLABLE");
    let stranger = api
        .post(&format!("/orders/{paid}/payment"), json!({"user_id": 2}))
        .await;
    assert_eq!(stranger.code(), "ORDER_NOT_FOUND");
    // The coupon stays USED by the archived order; money and stock add up.
    let coupons = get(&api, "/users/1/coupons").await;
    assert_eq!(coupons["coupons"][0]["status"], "USED");
    assert_full_audit_ok(&engine).await;
    let admin = api.authorized(helpers::ADMIN_TOKEN);
    let full = admin.get("/admin/audit?full=true").await;
    assert_eq!(full.body["ok"], true, "{}", full.body);
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_orders_move_to_the_archive_and_read_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let api = Api::new(&engine);
    engine.issue_coupon(1, 1).await.unwrap();
    let paid = engine.place_order(1, mug(2)).await.unwrap().order_id;
    engine.pay(paid, 1, Some(1)).await.unwrap();
    let cancelled = engine.place_order(1, mug(1)).await.unwrap().order_id;
    engine.cancel(cancelled, 1).await.unwrap();
    let expiring = engine.place_order(1, mug(3)).await.unwrap().order_id;
    let before = [
        get(&api, &format!("/orders/{paid}")).await,
        get(&api, &format!("/orders/{cancelled}")).await,
    ];

    let state = archived(&engine, 3, 1).await;
    assert_eq!(state.archived_orders, 3);
    let pending = engine.place_order(1, mug(1)).await.unwrap().order_id;
    let placed = Placed {
        paid,
        cancelled,
        expiring,
        pending,
        before,
    };
    // `pending` expires and moves too before the live state is taken: nothing is then left
    // to happen on a timer between it and the restart.
    archived(&engine, 4, 1).await;
    let engine = check(engine, &placed).await;
    let live = helpers::settled(&engine).await;
    engine.stop().await;

    // Journal, snapshot and archive together rebuild the same state.
    let restarted = open(dir.path()).await;
    let rebuilt = helpers::settled(&restarted).await;
    helpers::assert_rebuilt(rebuilt, &live, "after a restart");
    let restarted = check(restarted, &placed).await;
    restarted.snapshot().await.unwrap();
    restarted.stop().await;
    let from_snapshot = open(dir.path()).await;
    check(from_snapshot, &placed).await.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_storing_and_recording_a_move_keeps_one_copy() {
    let dir = tempfile::tempdir().unwrap();
    let mut long = config();
    long.archive_after = Duration::from_secs(3_600);
    let engine = open_with(long.clone(), storage(dir.path()), seed(), Clock::system()).await;
    let order = engine.place_order(2, mug(1)).await.unwrap();
    let paid = engine.pay(order.order_id, 2, None).await.unwrap();
    let ended = engine.order(order.order_id).await.unwrap();
    helpers::settled(&engine).await; // the data platform's acknowledgement is recorded
    engine.stop().await;
    // What the archivist had done when the process died: the batch stored and synced, the
    // `OrdersArchived` record never written.
    Archive::open(dir.path())
        .unwrap()
        .store(std::slice::from_ref(&ended))
        .unwrap();

    let restarted = open_with(long.clone(), storage(dir.path()), seed(), Clock::system()).await;
    let state = helpers::settled(&restarted).await;
    assert!(
        !state.users[&2].orders.contains_key(&order.order_id),
        "recovery dropped the memory copy"
    );
    assert_eq!(state.archived_orders, 1);
    assert_eq!(restarted.order(order.order_id).await.unwrap(), ended);
    assert_eq!(state.users[&2].paid, paid.paid_amount);
    assert_full_audit_ok(&restarted).await;
    restarted.stop().await;
    // The fix-up was recorded: a second start finds nothing to fix.
    let again = open_with(long, storage(dir.path()), seed(), Clock::system()).await;
    assert_eq!(again.read_state().await.unwrap(), state);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_without_its_snapshots_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let order = engine.place_order(3, mug(1)).await.unwrap();
    engine.cancel(order.order_id, 3).await.unwrap();
    archived(&engine, 1, 3).await;
    engine.stop().await;
    // The snapshots, the journal and the entity store go; the archive stays.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::remove_file(path).unwrap();
        }
    }
    std::fs::remove_dir_all(dir.path().join(commerce_engine::store::DIR_NAME)).unwrap();
    let refused = commerce_engine::app::open(
        config(),
        storage(dir.path()),
        Clock::system(),
        || Ok(seed()),
    )
    .await
    .err()
    .expect("the start is refused");
    assert!(refused.to_string().contains("archive"), "{refused}");
}

/// On tokio's paused clock: an ended order stays in memory until `archive_after` has passed
/// since it ended, not a moment before, then moves and reads back the same. (Without a
/// journal: its threads do not follow the paused clock. The archive's fsyncs run under
/// `spawn_blocking`, which holds the paused clock still while they run.)
#[tokio::test(start_paused = true)]
async fn an_ended_order_moves_once_archive_after_has_passed_since_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let archive_after = Duration::from_secs(60);
    let mut config = helpers::config(Duration::from_secs(600));
    config.archive = Some(Archive::open(dir.path()).unwrap());
    config.archive_after = archive_after;
    let start = commerce_engine::clock::Timestamp::parse(helpers::START).unwrap();
    let engine = Engine::start(config, Clock::starting_at(start), &seed())
        .await
        .unwrap();
    let order = engine.place_order(1, mug(1)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    engine.pay(order.order_id, 1, None).await.unwrap();
    let paid = engine.order(order.order_id).await.unwrap();

    tokio::time::sleep(archive_after - Duration::from_millis(1)).await;
    let state = engine.read_state().await.unwrap();
    assert_eq!(
        state.archived_orders, 0,
        "moved before archive_after had passed"
    );
    assert!(state.users[&1].orders.contains_key(&order.order_id));

    tokio::time::sleep(Duration::from_millis(1)).await;
    let state = archived(&engine, 1, 1).await;
    assert_eq!(state.archived_orders, 1);
    assert_eq!(engine.order(order.order_id).await.unwrap(), paid);
    let (orders, next_before) = engine.user_orders(1, 10, None).await.unwrap();
    assert_eq!((orders, next_before), (vec![paid], None));
    assert_full_audit_ok(&engine).await;
    engine.stop().await;
}
