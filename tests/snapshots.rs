//! Snapshots and the journal end to end, in process: a restart restores every kind of state
//! (from the journal alone, and from a snapshot plus the journal after it); snapshots taken
//! under concurrent load each restore, with the journal after them, to the live state; pending
//! orders keep their deadlines across a restart; undelivered data-platform records are
//! redelivered; and the checked-in version-1 fixture keeps loading.

mod helpers;

use std::path::Path;
use std::time::Duration;

use commerce_engine::clock::{Clock, Timestamp};
use commerce_engine::domain::state::EngineState;
use commerce_engine::engine::{NewCoupon, NewProduct, NewProductOption, OrderLine};
use commerce_engine::journal;
use commerce_engine::kernel::actors::data_platform::Sink;
use commerce_engine::model::{Discount, OrderStatus};
use commerce_engine::snapshot;
use commerce_engine::{Engine, EngineConfig};
use helpers::{EXPIRY, START, catalog, config, open_in, settle};

fn start_time() -> Timestamp {
    Timestamp::parse(START).unwrap()
}

/// The state recovery rebuilds from `dir`, with what a crash left unfinished finished.
fn recovered(dir: &Path) -> EngineState {
    let recovered = journal::recover(dir, false, || Err("no seed here".into())).unwrap();
    let mut state = recovered.state;
    for record in recovered.unfinished {
        state.apply(record).unwrap();
    }
    state
}

fn line(product_id: u64, option_id: u64, quantity: u64) -> Vec<OrderLine> {
    vec![OrderLine {
        product_id,
        option_id: Some(option_id),
        quantity,
    }]
}

/// Drives an engine through every kind of state: charges, coupons held and used, orders
/// PENDING, PAID, CANCELLED and EXPIRED, a restock, admin-created entities, sales statistics.
async fn populate(engine: &Engine) -> u64 {
    let expired = engine
        .place_order(4, line(2, 21, 2))
        .await
        .unwrap()
        .order_id;
    tokio::time::advance(EXPIRY).await;
    settle().await;
    assert_eq!(
        engine.order(expired).await.unwrap().status,
        OrderStatus::Expired
    );
    engine.charge(1, 20_000).await.unwrap();
    engine.issue_coupon(1, 1).await.unwrap();
    engine.issue_coupon(1, 2).await.unwrap();
    engine.issue_coupon(2, 1).await.unwrap();
    let paid = engine
        .place_order(1, line(1, 11, 2))
        .await
        .unwrap()
        .order_id;
    engine.pay(paid, 1, Some(1)).await.unwrap();
    let cancelled = engine
        .place_order(2, line(2, 21, 1))
        .await
        .unwrap()
        .order_id;
    engine.cancel(cancelled, 2).await.unwrap();
    let pending = engine
        .place_order(3, line(1, 12, 1))
        .await
        .unwrap()
        .order_id;
    engine.restock(1, 12, 7).await.unwrap();
    engine.create_user(Some(77), 5_000).await.unwrap();
    create_lamp_and_coupon(engine).await;
    pending
}

/// The admin creations both populations end with: product "Lamp" and coupon "Late".
async fn create_lamp_and_coupon(engine: &Engine) {
    let options = vec![NewProductOption {
        name: "Only".into(),
        stock: 4,
    }];
    let lamp = NewProduct {
        name: "Lamp".into(),
        category: "home".into(),
        price: 1,
        options,
        purchase_limit: Some(2),
    };
    engine.create_product(lamp).await.unwrap();
    let coupon = NewCoupon {
        name: "Late".into(),
        discount: Discount::Percent { percent: 5 },
        quantity: 3,
        expires_at: None,
    };
    engine.create_coupon(coupon).await.unwrap();
}

/// Polls `check` (every 5 ms, at most 60 s) until it holds: for effects that follow a restart
/// in the background (expiry of past-deadline orders, redelivery). The guard only turns a hang
/// into a failure.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    for _ in 0..12_000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never happened: {what}");
}

fn minutes_after_start(minutes: u64) -> Clock {
    Clock::starting_at(start_time().saturating_add(Duration::from_secs(minutes * 60)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_restores_every_kind_of_state() {
    let dir = tempfile::tempdir().unwrap();
    let seed = catalog(10, 100_000, 50, 30);
    let engine = open_in(dir.path(), seed.clone(), minutes_after_start(0)).await;
    let first = populate_journaled(&engine).await;
    let before = helpers::settled(&engine).await;
    engine.stop().await;
    let context = "the seed's snapshot and the whole journal";
    helpers::assert_rebuilt(recovered(dir.path()), &before, context);

    // Eleven minutes later: the pending order is past its deadline and expires on start.
    let engine = open_in(dir.path(), seed.clone(), minutes_after_start(11)).await;
    eventually("the past-deadline order expired", || async {
        engine.order(first).await.unwrap().status == OrderStatus::Expired
    })
    .await;
    let pending = engine.place_order(5, line(2, 21, 3)).await.unwrap();
    let info = engine.snapshot().await.unwrap();
    assert!(info.bytes > 0 && info.path.exists());
    engine.charge(5, 1_234).await.unwrap(); // after the snapshot: only in the journal
    engine.cancel(pending.order_id, 5).await.unwrap();
    let pending = engine.place_order(6, line(1, 12, 1)).await.unwrap();
    let before = helpers::settled(&engine).await;
    let popular_before = engine.popular(3, 10).await.unwrap();
    engine.stop().await;
    helpers::assert_rebuilt(
        recovered(dir.path()),
        &before,
        "a snapshot + the journal after it",
    );

    let restored = open_in(dir.path(), seed, minutes_after_start(12)).await;
    let restored_state = restored.read_state().await.unwrap();
    helpers::assert_rebuilt(restored_state, &before, "the restarted engine");
    assert_eq!(restored.popular(3, 10).await.unwrap(), popular_before);
    let order = restored.order(pending.order_id).await.unwrap();
    assert_eq!(
        (order.status, order.expires_at),
        (OrderStatus::Pending, pending.expires_at)
    );
    // The id counters came along: new ids continue after every id the old engine gave.
    let next = restored.place_order(5, line(2, 21, 1)).await.unwrap();
    assert!(next.order_id >= before.ids.next_order_id);
    assert_eq!(
        restored.read_state().await.unwrap().ids.next_user_id,
        before.ids.next_user_id
    );
    helpers::assert_audit_ok(&restored).await;
    restored.stop().await;
}

/// Everything `populate` does except what needs the clock to move: charges, coupons held and
/// used, orders PAID, CANCELLED and PENDING, a restock, admin-created entities, sales. Returns
/// the PENDING order.
async fn populate_journaled(engine: &Engine) -> u64 {
    engine.charge(1, 20_000).await.unwrap();
    engine.issue_coupon(1, 1).await.unwrap();
    engine.issue_coupon(1, 2).await.unwrap();
    engine.issue_coupon(2, 1).await.unwrap();
    let paid = engine.place_order(1, line(1, 11, 2)).await.unwrap();
    engine.pay(paid.order_id, 1, Some(1)).await.unwrap();
    let two_products = vec![line(1, 11, 1)[0], line(2, 21, 2)[0]];
    let paid = engine.place_order(2, two_products).await.unwrap();
    engine.pay(paid.order_id, 2, Some(1)).await.unwrap();
    let cancelled = engine.place_order(2, line(2, 21, 1)).await.unwrap();
    engine.cancel(cancelled.order_id, 2).await.unwrap();
    let short = vec![line(2, 21, 1)[0], line(3, 31, 1)[0]];
    assert!(engine.place_order(3, short).await.is_err(), "out of stock");
    let pending = engine.place_order(3, line(1, 12, 1)).await.unwrap();
    engine.restock(1, 12, 7).await.unwrap();
    engine.create_user(Some(77), 5_000).await.unwrap();
    engine.create_user(None, 1).await.unwrap();
    create_lamp_and_coupon(engine).await;
    pending.order_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_orders_keep_their_deadlines_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let seed = catalog(5, 100_000, 10, 1);
    let engine = open_in(dir.path(), seed.clone(), minutes_after_start(0)).await;
    let early = engine.place_order(1, line(1, 11, 3)).await.unwrap();
    engine.stop().await;
    let engine = open_in(dir.path(), seed.clone(), minutes_after_start(8)).await;
    let late = engine.place_order(2, line(1, 11, 4)).await.unwrap();
    engine.stop().await;

    // Minute 11: `early` (deadline minute 10) expires at once, `late` (minute 18) does not.
    let engine = open_in(dir.path(), seed.clone(), minutes_after_start(11)).await;
    // The order turns EXPIRED first; its stock comes back once the product has the release.
    eventually("early expired at once and its 3 came back", || async {
        engine.order(early.order_id).await.unwrap().status == OrderStatus::Expired
            && engine.product(1).unwrap().options[0].stock == 6
    })
    .await;
    let late_now = engine.order(late.order_id).await.unwrap();
    assert_eq!(
        (late_now.status, late_now.expires_at),
        (OrderStatus::Pending, late.expires_at)
    );
    assert_eq!(
        engine.product(1).unwrap().options[0].stock,
        6,
        "only the early order's 3 came back"
    );
    engine.stop().await;

    let engine = open_in(dir.path(), seed, minutes_after_start(19)).await;
    eventually(
        "late expired once its deadline had passed, all stock back",
        || async {
            engine.order(late.order_id).await.unwrap().status == OrderStatus::Expired
                && engine.product(1).unwrap().options[0].stock == 10
        },
    )
    .await;
    helpers::assert_audit_ok(&engine).await;
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshots_under_load_restore_with_the_journal_to_the_live_state() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_in(
        dir.path(),
        catalog(200, 300_000, 2_000, 100),
        Clock::system(),
    )
    .await;
    let buyers: Vec<_> = (1..=200u64)
        .map(|user_id| {
            let engine = engine.clone();
            tokio::spawn(async move {
                for round in 0..15u64 {
                    let _ = engine.issue_coupon(1 + (round % 2), user_id).await;
                    let product = [(1, 11), (2, 21), (1, 12)][((user_id + round) % 3) as usize];
                    let mut lines = line(product.0, product.1, 1 + round % 2);
                    if round % 5 == 0 {
                        lines.push(line(3, 31, 1)[0]); // out of stock: reserves, then releases
                    } else if round % 5 == 1 && product.0 == 1 {
                        lines.push(line(2, 21, 1)[0]);
                    }
                    let Ok(order) = engine.place_order(user_id, lines).await else {
                        continue;
                    };
                    match (user_id + round) % 4 {
                        0 => drop(engine.cancel(order.order_id, user_id).await),
                        1 => drop(engine.pay(order.order_id, user_id, Some(1)).await),
                        2 => drop(engine.charge(user_id, 1_000).await),
                        _ => drop(engine.pay(order.order_id, user_id, None).await),
                    }
                }
            })
        })
        .collect();
    // Flushes of the store (the periodic snapshot) and snapshot files, in turn; the last
    // is a file, which also flushes the store to its position.
    for round in 0..10 {
        if round % 2 == 0 {
            engine.flush().await.unwrap();
        } else {
            engine.snapshot().await.unwrap();
        }
        tokio::task::yield_now().await;
    }
    for buyer in buyers {
        buyer.await.unwrap();
    }
    let live = helpers::settled(&engine).await;
    helpers::assert_audit_ok(&engine).await;
    engine.stop().await;
    let rebuilds = |from: &str| {
        let mut rebuilt = recovered(dir.path());
        // Order ids are recorded by block: the counter comes back at or above the live one, so
        // no id is ever given twice.
        assert!(rebuilt.ids.next_order_id >= live.ids.next_order_id);
        rebuilt.ids.next_order_id = live.ids.next_order_id;
        assert!(
            rebuilt == live,
            "{from} + journal differ from the live state"
        );
    };

    // The store, with the journal after it, rebuilds exactly the live state; so does the
    // newest snapshot file (at the store's position) once the store is gone.
    rebuilds("the entity store");
    let files = snapshot::list(dir.path()).unwrap();
    assert_eq!(files.len(), 6, "the seed's snapshot and five under load");
    for (sequence, position, path) in &files {
        let loaded = snapshot::decode_file(&std::fs::read(path).unwrap())
            .unwrap_or_else(|reason| panic!("snapshot {sequence}: {reason}"));
        assert_eq!(loaded.position, *position);
    }
    std::fs::remove_dir_all(dir.path().join(commerce_engine::store::DIR_NAME)).unwrap();
    rebuilds("the newest snapshot file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_records_are_redelivered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sink_dir = tempfile::tempdir().unwrap();
    let seed = catalog(3, 100_000, 10, 1);
    // A sink that cannot take anything: its directory does not exist.
    let failing = EngineConfig {
        sink: Sink::File(sink_dir.path().join("missing/paid.jsonl")),
        ..config(EXPIRY)
    };
    let storage = helpers::storage(dir.path());
    let engine = helpers::open_with(failing, storage.clone(), seed.clone(), Clock::system()).await;
    let order = engine.place_order(1, line(2, 21, 2)).await.unwrap();
    engine.pay(order.order_id, 1, None).await.unwrap();
    let pending = engine.read_state().await.unwrap().data_platform.pending;
    assert_eq!(
        pending.keys().copied().collect::<Vec<_>>(),
        [order.order_id]
    );
    engine.stop().await;

    let sink_path = sink_dir.path().join("paid.jsonl");
    let working = EngineConfig {
        sink: Sink::File(sink_path.clone()),
        ..config(EXPIRY)
    };
    let restored = helpers::open_with(working, storage, seed, Clock::system()).await;
    eventually("the record was redelivered and acknowledged", || async {
        restored
            .read_state()
            .await
            .unwrap()
            .data_platform
            .pending
            .is_empty()
    })
    .await;
    let delivered = std::fs::read_to_string(&sink_path).unwrap();
    let record: serde_json::Value =
        serde_json::from_str(delivered.lines().next().expect("redelivered")).unwrap();
    assert_eq!(
        (record["order_id"].as_u64(), record["paid_amount"].as_u64()),
        (Some(order.order_id), Some(20_000))
    );
    restored.stop().await;
    let after = recovered(dir.path()).data_platform;
    assert!(
        after.pending.is_empty(),
        "the acknowledgement is in the journal"
    );
    assert_eq!(after.delivered, 1);
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/snapshot-v1.bin"
);

/// Version-1 files written by earlier builds must keep loading, and must equal what this build
/// produces from the same operations (the test catalog after `populate`, in memory).
#[tokio::test(start_paused = true)]
async fn the_version_1_fixture_still_loads() {
    let loaded = snapshot::decode_file(&std::fs::read(FIXTURE).unwrap()).unwrap();
    assert_eq!((loaded.sequence, loaded.position), (1, 0));
    let state = &loaded.state;
    assert_eq!(state.users.len(), 11);
    assert_eq!(state.users[&1].balance, 100_000 + 20_000 - 97_000);
    assert_eq!(
        state
            .users
            .values()
            .map(|user| user.orders.len())
            .sum::<usize>(),
        4
    );
    assert_eq!(state.coupons[&1].holders.len(), 2);
    assert_eq!(state.products[&1].options[1].restocked, 7);
    assert_eq!(state.products.len(), 4);
    let engine = helpers::engine(catalog(10, 100_000, 50, 30)).await;
    populate(&engine).await;
    let mut expected = engine.read_state().await.unwrap();
    // Version 1 predates purchase limits: its Lamp has none.
    expected.products.get_mut(&4).unwrap().purchase_limit = None;
    assert_eq!(loaded.state, expected);
}
