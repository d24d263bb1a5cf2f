//! Supervised entity actors (`src/kernel/supervision.rs`): a user, a product and a coupon
//! whose handler panics — after its change was recorded and its reply handed over, with its
//! state garbled as a half-applied change would leave it — come back with the state the
//! journal has, serve again, lose nothing acknowledged, and are counted in `/metrics`.

mod helpers;

use std::sync::{Arc, Mutex};

use commerce_engine::clock::Clock;
use commerce_engine::domain::state::EngineState;
use commerce_engine::engine::OrderLine;
use commerce_engine::journal;
use commerce_engine::kernel::directory::{Key, Kind};
use commerce_engine::kernel::supervision::Panics;
use commerce_engine::model::OrderStatus;
use commerce_engine::{Engine, EngineConfig, EngineError};

/// The entity whose next handled message fails (garbled, then a panic), once.
#[derive(Clone, Default)]
struct Failing(Arc<Mutex<Option<Key>>>);

impl Failing {
    fn next(&self, key: Key) {
        *self.0.lock().unwrap() = Some(key);
    }

    fn panics(&self) -> Panics {
        let armed = self.0.clone();
        Panics(Arc::new(move |key, state| {
            let mut armed = armed.lock().unwrap();
            if *armed != Some(key) {
                return false;
            }
            *armed = None;
            helpers::garble(state);
            true
        }))
    }
}

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
