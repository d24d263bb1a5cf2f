//! Supervised entity actors (`src/kernel/supervision.rs`): a user, a product and a coupon
//! whose handler panics — after its work, with its state garbled as a half-applied change
//! would leave it, or right after it recorded a change, before its follow-ups — come back with
//! the state the journal has, serve again, lose nothing acknowledged, finish what the change
//! set off on other actors, and are counted in `/metrics`.

mod helpers;

use std::sync::{Arc, Mutex};

use commerce_engine::clock::Clock;
use commerce_engine::domain::state::EngineState;
use commerce_engine::engine::OrderLine;
use commerce_engine::journal;
use commerce_engine::kernel::directory::{Key, Kind};
use commerce_engine::kernel::supervision::{Moment, Panics};
use commerce_engine::model::OrderStatus;
use commerce_engine::{Engine, EngineConfig, EngineError};

/// The entity whose handler fails next at a given moment (garbled, then a panic), once.
#[derive(Clone, Default)]
struct Failing(Arc<Mutex<Option<(Moment, Key)>>>);

impl Failing {
    /// The next message `key` handles fails after its work.
    fn next(&self, key: Key) {
        self.next_at(Moment::Handled, key);
    }

    fn next_at(&self, moment: Moment, key: Key) {
        *self.0.lock().unwrap() = Some((moment, key));
    }

    fn panics(&self) -> Panics {
        let armed = self.0.clone();
        Panics(Arc::new(move |moment, key, state| {
            let mut armed = armed.lock().unwrap();
            if *armed != Some((moment, key)) {
                return false;
            }
            *armed = None;
            helpers::garble(state);
            true
        }))
    }
}

/// An engine with a journal in `dir` whose handlers fail when `failing` says.
async fn open(dir: &std::path::Path, failing: &Failing) -> Engine {
    let config = EngineConfig {
        panics: Some(failing.panics()),
        ..helpers::config(helpers::EXPIRY)
    };
    let seed = helpers::catalog(10, 100_000, 50, 30);
    helpers::open_with(config, helpers::storage(dir), seed, Clock::system()).await
}

fn failures(engine: &Engine, kind: &str) -> String {
    let text = engine.metrics_text();
    let family = format!("commerce_actor_failures_total{{kind=\"{kind}\"}} ");
    let line = text.lines().find(|line| line.starts_with(&family));
    line.unwrap_or_else(|| panic!("no {family} in:\n{text}"))[family.len()..].to_string()
}

fn mugs(quantity: u64) -> Vec<OrderLine> {
    vec![OrderLine {
        product_id: 2,
        option_id: Some(21),
        quantity,
    }]
}

fn no_seed() -> Result<EngineState, String> {
    Err("a snapshot exists".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_a_product_and_a_coupon_come_back_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let failing = Failing::default();
    let engine = open(dir.path(), &failing).await;

    // A user: the charge whose handler fails was acknowledged, so it stands.
    assert_eq!(engine.charge(1, 1_000).await.unwrap(), 101_000);
    failing.next((Kind::User, 1));
    assert_eq!(engine.charge(1, 500).await.unwrap(), 101_500);
    assert_eq!(
        engine.charge(1, 1).await.unwrap(),
        101_501,
        "not the garbled 7"
    );
    assert_eq!(engine.balance(1).await.unwrap(), 101_501);

    // A product: the reservation the failing handler made stands, and so does the order.
    failing.next((Kind::Product, 2));
    let order = engine.place_order(2, mugs(3)).await.unwrap();
    assert_eq!(engine.product(2).unwrap().options[0].stock, 97);
    let paid = engine.pay(order.order_id, 2, None).await.unwrap();
    assert_eq!(paid.status, OrderStatus::Paid);
    engine.place_order(2, mugs(1)).await.unwrap();
    assert_eq!(engine.product(2).unwrap().options[0].stock, 96);

    // A coupon: the unit issued by the failing handler is gone from the coupon and held by
    // its user; nobody gets a second one.
    failing.next((Kind::Coupon, 1));
    engine.issue_coupon(1, 3).await.unwrap();
    assert_eq!(engine.coupon(1).await.unwrap().remaining_quantity, 29);
    let again = engine.issue_coupon(1, 3).await.unwrap_err();
    assert!(
        matches!(again, EngineError::Issue(_)),
        "already issued: {again:?}"
    );
    engine.issue_coupon(1, 4).await.unwrap();
    assert_eq!(engine.coupon(1).await.unwrap().remaining_quantity, 28);
    let held = engine.user_coupons(3).await.unwrap();
    assert_eq!(held.iter().filter(|c| c.coupon_id == 1).count(), 1);

    for kind in ["user", "product", "coupon"] {
        assert_eq!(failures(&engine, kind), "1", "{kind}");
    }
    helpers::assert_audit_ok(&engine).await;

    // What every restored entity serves is what the journal rebuilds.
    let live = helpers::settled(&engine).await;
    engine.stop().await;
    let mut rebuilt = journal::recover(dir.path(), false, no_seed).unwrap();
    for record in std::mem::take(&mut rebuilt.unfinished) {
        rebuilt.state.apply(record).unwrap();
    }
    helpers::assert_rebuilt(rebuilt.state, &live, "after three restores");
}

/// Option 21's available, reserved and sold units, read through the product's actor (so after
/// every message queued to it before).
async fn mug_stock(engine: &Engine) -> (u64, u64, u64) {
    let state = engine.read_state().await.unwrap();
    let option = &state.products[&2].options[0];
    (option.available, option.reserved, option.sold)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_that_fails_after_its_record_still_releases_the_stock_and_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    let failing = Failing::default();
    let engine = open(dir.path(), &failing).await;
    let order = engine.place_order(5, mugs(4)).await.unwrap();
    assert_eq!(mug_stock(&engine).await, (96, 4, 0));
    failing.next_at(Moment::Recorded, (Kind::User, 5));
    let cancelled = engine.cancel(order.order_id, 5).await;
    assert!(
        matches!(cancelled, Err(EngineError::Unavailable(_))),
        "its answer was lost with the handler: {cancelled:?}"
    );
    let order = engine.order(order.order_id).await.unwrap();
    assert_eq!(
        order.status,
        OrderStatus::Cancelled,
        "the recorded cancel stands"
    );
    assert_eq!(
        mug_stock(&engine).await,
        (100, 0, 0),
        "released by the restore"
    );
    assert_eq!(engine.product(2).unwrap().options[0].stock, 100);
    // Every pending-order slot is free again: the limit's worth of orders goes through.
    let limit = commerce_engine::config::Limits::default().max_pending_orders_per_user;
    for _ in 0..limit {
        engine.place_order(5, mugs(1)).await.unwrap();
    }
    assert_eq!(failures(&engine, "user"), "1");
    helpers::assert_audit_ok(&engine).await;
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_that_fails_after_its_record_is_settled_once() {
    let dir = tempfile::tempdir().unwrap();
    let failing = Failing::default();
    let engine = open(dir.path(), &failing).await;
    let order = engine.place_order(6, mugs(2)).await.unwrap();
    failing.next_at(Moment::Recorded, (Kind::User, 6));
    let paid = engine.pay(order.order_id, 6, None).await;
    assert!(matches!(paid, Err(EngineError::Unavailable(_))), "{paid:?}");
    let order = engine.order(order.order_id).await.unwrap();
    assert_eq!(
        order.status,
        OrderStatus::Paid,
        "the recorded payment stands"
    );
    assert_eq!(engine.balance(6).await.unwrap(), 100_000 - 20_000);
    assert_eq!(
        mug_stock(&engine).await,
        (98, 0, 2),
        "committed by the restore"
    );
    // The sale and the delivery were sent by the restore, once: the audit's sales match the
    // paid orders, and the state is what the journal rebuilds.
    helpers::assert_audit_ok(&engine).await;
    let live = helpers::settled(&engine).await;
    engine.stop().await;
    let mut rebuilt = journal::recover(dir.path(), false, no_seed).unwrap();
    for record in std::mem::take(&mut rebuilt.unfinished) {
        rebuilt.state.apply(record).unwrap();
    }
    helpers::assert_rebuilt(rebuilt.state, &live, "after a failed payment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_fails_after_its_record_passes_the_chain_on() {
    let dir = tempfile::tempdir().unwrap();
    let failing = Failing::default();
    let engine = open(dir.path(), &failing).await;
    let keyboard = OrderLine {
        product_id: 1,
        option_id: Some(12),
        quantity: 1,
    };
    let lines = [vec![keyboard], mugs(3)].concat();
    let order = engine.place_order(7, lines).await.unwrap();
    failing.next_at(Moment::Recorded, (Kind::Product, 1));
    // Product 1 releases first and fails; the chain goes on to product 2, and the answer,
    // which travels with the chain, arrives.
    let cancelled = engine.cancel(order.order_id, 7).await.unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(engine.product(1).unwrap().options[1].stock, 5);
    assert_eq!(engine.product(2).unwrap().options[0].stock, 100);
    assert_eq!(failures(&engine, "product"), "1");
    helpers::assert_audit_ok(&engine).await;
    engine.stop().await;
}

#[tokio::test]
async fn without_a_journal_a_failed_entity_keeps_serving() {
    let failing = Failing::default();
    let config = EngineConfig {
        panics: Some(failing.panics()),
        ..helpers::config(helpers::EXPIRY)
    };
    let seed = helpers::catalog(3, 100_000, 50, 30);
    let engine = Engine::start(config, Clock::system(), &seed).await.unwrap();
    failing.next((Kind::User, 1));
    assert_eq!(engine.charge(1, 10).await.unwrap(), 100_010);
    // Nothing durable to restore from: the state stays as the handler left it.
    assert_eq!(engine.charge(1, 1).await.unwrap(), 8);
    assert_eq!(failures(&engine, "user"), "1");
}
