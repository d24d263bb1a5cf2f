//! Virtual actors (docs/virtual-actors.md): an entity's actor starts with its first message and
//! stops when idle, and nothing a client can observe changes. Proven here with many concurrent
//! tasks: two first messages start one actor; messages racing an actor that stops are each
//! applied once; an audit meeting stopping actors reads one state; idle actors stop on the
//! paused clock; the cap on running actors holds; start-up and published reads start nothing.

mod helpers;

use std::time::Duration;

use commerce_engine::Engine;
use commerce_engine::engine::{OrderLine, ProductQuery};
use commerce_engine::kernel::directory::Passivation;
use helpers::{Api, EVERY_MESSAGE, assert_audit_ok, catalog, engine_with, race};

fn mugs(quantity: u64) -> Vec<OrderLine> {
    vec![OrderLine {
        product_id: 2,
        option_id: Some(21),
        quantity,
    }]
}

/// Actors that stop after `after` idle, at most `max_running` at once.
fn passivating(after: Duration, max_running: usize) -> Passivation {
    Passivation { after, max_running }
}

/// Lets the engine's background tasks (actors handing their state back, the sweeper) run:
/// on the paused clock this sleep takes no real time.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Waits until at most `count` actors run: actors stop in the background (after their last
/// message, or told by the sweeper). Polls every millisecond; the 10 s bound only turns a
/// hang into a failure.
async fn until_running_at_most(engine: &Engine, count: usize) {
    for _ in 0..10_000 {
        if running(engine) <= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{} actors still run, more than {count}", running(engine));
}

fn running(engine: &Engine) -> usize {
    engine.directory().running_count()
}

fn activations(engine: &Engine) -> u64 {
    engine.directory().activations().0
}

#[tokio::test]
async fn start_up_starts_no_actor_and_published_reads_start_none() {
    let engine = engine_with(Passivation::default(), catalog(10_000, 5_000, 50, 30)).await;
    assert_eq!(engine.directory().entity_count(), 10_000 + 3 + 3);
    assert_eq!((running(&engine), activations(&engine)), (0, 0));

    let api = Api::new(&engine);
    let points = api.get("/users/9999/points").await;
    assert_eq!(points.body["balance"], 5_000);
    assert_eq!(api.get("/products").await.body["total"], 3);
    assert_eq!(api.get("/products/1").await.body["options"][0]["stock"], 50);
    let listed = engine.products(&ProductQuery::default());
    assert_eq!(listed.total, 3);
    assert_eq!(engine.balance(1).await.unwrap(), 5_000);
    assert_eq!(
        (running(&engine), activations(&engine)),
        (0, 0),
        "published reads start no actor"
    );
    assert_audit_ok(&engine).await;
    assert_eq!(
        activations(&engine),
        0,
        "the audit reads passive entities in place"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_first_messages_at_once_start_one_actor() {
    let engine = engine_with(Passivation::default(), catalog(3, 0, 50, 30)).await;
    let outcomes = race((0..1_000).map(|_| {
        let engine = engine.clone();
        async move { engine.charge(2, 7).await }
    }))
    .await;
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(engine.balance(2).await.unwrap(), 7_000);
    assert_eq!((running(&engine), activations(&engine)), (1, 1));
    assert_audit_ok(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_racing_an_actor_that_stops_are_each_applied_once() {
    // Every message stops its actor: each of these finds it running, stopping or passive.
    let engine = engine_with(EVERY_MESSAGE, catalog(3, 0, 1_000, 30)).await;
    let charges = race((0..1_000).map(|_| {
        let engine = engine.clone();
        async move { engine.charge(1, 100).await }
    }));
    // Coupons reach the same user from coupon actors while it stops and starts.
    let issues = race((1..=2).map(|coupon| {
        let engine = engine.clone();
        async move { engine.issue_coupon(coupon, 1).await }
    }));
    let (charges, issues) = tokio::join!(charges, issues);
    assert!(charges.iter().all(Result::is_ok));
    assert!(issues.iter().all(Result::is_ok));
    assert_eq!(engine.balance(1).await.unwrap(), 100_000);
    assert_eq!(engine.user_coupons(1).await.unwrap().len(), 2);

    // Orders and payments of one user, all at once, with every actor stopping after each.
    let placed = race((0..5).map(|_| {
        let engine = engine.clone();
        async move { engine.place_order(1, mugs(2)).await }
    }))
    .await;
    let paid = race(placed.into_iter().map(|order| {
        let engine = engine.clone();
        let order_id = order.expect("five slots").order_id;
        async move { engine.pay(order_id, 1, None).await }
    }))
    .await;
    assert!(paid.iter().all(Result::is_ok));
    assert_eq!(engine.balance(1).await.unwrap(), 100_000 - 5 * 2 * 10_000);
    assert_eq!(engine.product(2).unwrap().options[0].stock, 90);
    assert_audit_ok(&engine).await;
    until_running_at_most(&engine, 0).await;
    let (started, stopped) = engine.directory().activations();
    assert!(started >= 2, "the actors started {started} times");
    assert_eq!(stopped, started, "every actor handed its state back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_audit_meeting_stopping_actors_reads_one_state() {
    let engine = engine_with(EVERY_MESSAGE, catalog(50, 1_000_000, 1_000, 30)).await;
    let keyboards = || {
        vec![OrderLine {
            product_id: 1,
            option_id: Some(11),
            quantity: 1,
        }]
    };
    let load = race((1..=50).map(|user_id| {
        let engine = engine.clone();
        async move {
            for round in 0..10 {
                engine.charge(user_id, 10).await.unwrap();
                let order = engine.place_order(user_id, keyboards()).await.unwrap();
                if round % 2 == 0 {
                    engine.pay(order.order_id, user_id, None).await.unwrap();
                } else {
                    engine.cancel(order.order_id, user_id).await.unwrap();
                }
            }
        }
    }));
    let audits = async {
        let mut audits = 0;
        for _ in 0..20 {
            let report = engine.audit().await.unwrap();
            assert!(report.ok, "{:#?}", report.checks);
            audits += 1;
        }
        audits
    };
    let (_, audits) = tokio::join!(load, audits);
    assert_eq!(audits, 20);
    assert_eq!(engine.product(1).unwrap().options[0].stock, 1_000 - 250);
    assert_audit_ok(&engine).await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_actor_stops_after_passivate_after_and_its_next_message_starts_it() {
    let after = Duration::from_secs(10);
    let engine = engine_with(passivating(after, 100), catalog(3, 1_000, 50, 30)).await;
    engine.charge(1, 500).await.unwrap();
    engine.issue_coupon(1, 1).await.unwrap();
    assert_eq!(running(&engine), 2, "user 1 and coupon 1");

    tokio::time::sleep(after - Duration::from_millis(100)).await;
    assert_eq!(running(&engine), 2, "not before passivate_after");
    engine.charge(1, 1).await.unwrap(); // user 1 is busy again; coupon 1 stays idle
    tokio::time::sleep(after / 2).await;
    assert_eq!(
        running(&engine),
        1,
        "the idle coupon stopped, the busy user did not"
    );
    tokio::time::sleep(after).await;
    assert_eq!((running(&engine), activations(&engine)), (0, 2));

    assert_eq!(engine.balance(1).await.unwrap(), 1_501);
    assert_eq!(engine.user_coupons(1).await.unwrap().len(), 1);
    assert_eq!(engine.coupon(1).await.unwrap().remaining_quantity, 29);
    assert_eq!(activations(&engine), 4, "each came back for its message");
    assert_audit_ok(&engine).await;
}

#[tokio::test(start_paused = true)]
async fn over_the_cap_the_least_recently_used_actors_stop() {
    let engine = engine_with(
        passivating(Duration::from_secs(120), 16),
        catalog(200, 0, 50, 30),
    )
    .await;
    for user_id in 1..=200 {
        engine.charge(user_id, user_id).await.unwrap();
        settle().await;
        assert!(running(&engine) <= 16, "{} running", running(&engine));
    }
    for user_id in 1..=200 {
        assert_eq!(engine.balance(user_id).await.unwrap(), user_id);
    }
    assert_audit_ok(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_over_every_user_keeps_running_actors_bounded() {
    let engine = engine_with(
        passivating(Duration::from_secs(120), 64),
        catalog(2_000, 0, 50, 30),
    )
    .await;
    let outcomes = race((1..=2_000).map(|user_id| {
        let engine = engine.clone();
        async move { engine.charge(user_id, 3).await }
    }))
    .await;
    assert!(outcomes.iter().all(Result::is_ok));
    until_running_at_most(&engine, 64).await;
    assert!(activations(&engine) >= 2_000);
    let state = engine.read_state().await.unwrap();
    assert!(state.users.values().all(|user| user.balance == 3));
    assert_audit_ok(&engine).await;
}
