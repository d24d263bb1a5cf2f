//! Concurrency claims proven by racing many tasks on a multi-threaded runtime, with exact
//! counts: first-come coupons, the last units of stock, concurrent charges, double payment,
//! one coupon on two orders, and payment racing expiry. Each ends with a passing audit.

mod helpers;

use std::time::Duration;

use commerce_engine::EngineError;
use commerce_engine::domain::coupon::IssueError;
use commerce_engine::domain::product::StockError;
use commerce_engine::domain::user::PaymentError;
use commerce_engine::engine::{NewProduct, NewProductOption, OrderLine};
use commerce_engine::kernel::directory::Passivation;
use commerce_engine::model::OrderStatus;
use helpers::{assert_audit_ok, catalog, engine_with, engine_with_expiry_and, race};

/// Every race runs twice: with actors that keep running, and with actors that stop after every
/// message (at most 16 running), where each message may meet its actor starting or stopping.
macro_rules! races {
    ($($race:ident),* $(,)?) => {
        mod actors_keep_running {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $race() {
                    super::$race(super::Passivation::default()).await
                }
            )*
        }
        mod actors_stop_after_every_message {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $race() {
                    super::$race(super::helpers::EVERY_MESSAGE).await
                }
            )*
        }
    };
}

races!(
    five_hundred_users_race_for_thirty_coupons,
    one_user_asking_thirty_times_at_once_gets_one,
    a_hundred_buyers_for_fifty_units,
    multi_product_orders_racing_never_oversell,
    a_refusal_on_a_later_product_gives_the_earlier_stock_back,
    buyers_hanging_up_mid_placement_strand_no_stock,
    buyers_placing_paying_and_cancelling_at_once_on_one_product,
    two_hundred_concurrent_charges_on_one_user_lose_nothing,
    one_order_paid_ten_times_at_once_is_paid_once,
    one_coupon_on_two_orders_at_once_is_used_once,
    fifty_concurrent_orders_of_one_user_get_exactly_five_pending,
    concurrent_orders_of_one_user_never_pass_a_purchase_limit,
    payment_racing_expiry_over_many_orders,
);

fn line(product_id: u64, option_id: u64, quantity: u64) -> Vec<OrderLine> {
    vec![OrderLine {
        product_id,
        option_id: Some(option_id),
        quantity,
    }]
}

async fn five_hundred_users_race_for_thirty_coupons(passivation: Passivation) {
    let engine = engine_with(passivation, catalog(500, 0, 10, 30)).await;
    let outcomes = race((1..=500).map(|user_id| {
        let engine = engine.clone();
        async move { engine.issue_coupon(1, user_id).await }
    }))
    .await;
    let issued = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let sold_out = outcomes
        .iter()
        .filter(|o| matches!(o, Err(EngineError::Issue(IssueError::SoldOut(1)))))
        .count();
    assert_eq!((issued, sold_out), (30, 470));
    assert_eq!(engine.coupon(1).await.unwrap().remaining_quantity, 0);
    let mut holders = 0;
    for user_id in 1..=500 {
        holders += engine.user_coupons(user_id).await.unwrap().len();
    }
    assert_eq!(holders, 30, "every issued coupon reached its user");
    assert_audit_ok(&engine).await;
}

async fn one_user_asking_thirty_times_at_once_gets_one(passivation: Passivation) {
    let engine = engine_with(passivation, catalog(5, 0, 10, 30)).await;
    let outcomes = race((0..30).map(|_| {
        let engine = engine.clone();
        async move { engine.issue_coupon(1, 4).await }
    }))
    .await;
    let issued = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let duplicates = outcomes
        .iter()
        .filter(|o| matches!(o, Err(EngineError::Issue(IssueError::AlreadyIssued { .. }))))
        .count();
    assert_eq!((issued, duplicates), (1, 29));
    assert_eq!(engine.coupon(1).await.unwrap().remaining_quantity, 29);
    assert_eq!(engine.user_coupons(4).await.unwrap().len(), 1);
    assert_audit_ok(&engine).await;
}

async fn a_hundred_buyers_for_fifty_units(passivation: Passivation) {
    let engine = engine_with(passivation, catalog(100, 1_000_000, 50, 1)).await;
    let outcomes = race((1..=100).map(|user_id| {
        let engine = engine.clone();
        async move { engine.place_order(user_id, line(1, 11, 1)).await }
    }))
    .await;
    let placed = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let out_of_stock = outcomes
        .iter()
        .filter(|o| matches!(o, Err(EngineError::Stock(StockError::OutOfStock { .. }))))
        .count();
    assert_eq!((placed, out_of_stock), (50, 50));
    assert_eq!(engine.product(1).unwrap().options[0].stock, 0);
    assert_audit_ok(&engine).await;
}

async fn multi_product_orders_racing_never_oversell(passivation: Passivation) {
    // Each order takes one red keyboard and one mug; mugs (100) outnumber keyboards (20).
    let engine = engine_with(passivation, catalog(100, 1_000_000, 20, 1)).await;
    let outcomes = race((1..=100).map(|user_id| {
        let engine = engine.clone();
        let lines = vec![
            OrderLine {
                product_id: 2,
                option_id: None,
                quantity: 1,
            },
            OrderLine {
                product_id: 1,
                option_id: Some(11),
                quantity: 1,
            },
        ];
        async move { engine.place_order(user_id, lines).await }
    }))
    .await;
    assert_eq!(
        outcomes.iter().filter(|outcome| outcome.is_ok()).count(),
        20
    );
    assert_eq!(
        engine.product(2).unwrap().options[0].stock,
        80,
        "failed orders gave their mugs back"
    );
    assert_audit_ok(&engine).await;
}

/// A red keyboard (plenty) and a mug (100): products reserve in id order, so the keyboard is
/// reserved before the mug runs out.
fn keyboard_and_mug() -> Vec<OrderLine> {
    vec![
        OrderLine {
            product_id: 1,
            option_id: Some(11),
            quantity: 1,
        },
        OrderLine {
            product_id: 2,
            option_id: None,
            quantity: 1,
        },
    ]
}

async fn a_refusal_on_a_later_product_gives_the_earlier_stock_back(passivation: Passivation) {
    let engine = engine_with(passivation, catalog(150, 1_000_000, 1_000, 1)).await;
    let outcomes = race((1..=150).map(|user_id| {
        let engine = engine.clone();
        async move { engine.place_order(user_id, keyboard_and_mug()).await }
    }))
    .await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 100);
    for outcome in outcomes.iter().filter(|o| o.is_err()) {
        assert!(
            matches!(
                outcome,
                Err(EngineError::Stock(StockError::OutOfStock { .. }))
            ),
            "{outcome:?}"
        );
    }
    // Each refusal was answered after the keyboard it had reserved was released.
    assert_eq!(engine.product(1).unwrap().options[0].stock, 900);
    assert_eq!(engine.product(2).unwrap().options[0].stock, 0);
    assert_audit_ok(&engine).await;
}

async fn buyers_hanging_up_mid_placement_strand_no_stock(passivation: Passivation) {
    let engine = engine_with(passivation, catalog(150, 1_000_000, 1_000, 1)).await;
    // Every caller goes away at some point of its placement: before the buyer has it, or
    // while products reserve (the chain then runs to its end without anyone waiting).
    let callers: Vec<_> = (1..=150)
        .map(|user_id| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.place_order(user_id, keyboard_and_mug()).await })
        })
        .collect();
    for (index, caller) in callers.iter().enumerate() {
        for _ in 0..index % 7 {
            tokio::task::yield_now().await;
        }
        caller.abort();
    }
    // The audit waits for placements in flight (they carry their admission to the end).
    assert_audit_ok(&engine).await;
    let mut placed = 0;
    for user_id in 1..=150 {
        let (orders, _) = engine.user_orders(user_id, 10, None).await.unwrap();
        placed += orders.len() as u64;
    }
    assert!(placed <= 100);
    assert_eq!(engine.product(1).unwrap().options[0].stock, 1_000 - placed);
    assert_eq!(engine.product(2).unwrap().options[0].stock, 100 - placed);
}

/// Buyers pass placements to the product while the product passes reservations back and the
/// buyers send it releases: with actors stopping after every message, a buyer and the product
/// are often passivating at once, and neither may wait for the other (`Directory::forward`).
async fn buyers_placing_paying_and_cancelling_at_once_on_one_product(passivation: Passivation) {
    let engine = engine_with(passivation, catalog(40, 100_000_000, 100_000, 1)).await;
    let outcomes = race((0..800u64).map(|i| {
        let engine = engine.clone();
        let user_id = i % 40 + 1;
        async move {
            let order = engine.place_order(user_id, line(1, 11, 1)).await?;
            if i % 2 == 0 {
                engine.cancel(order.order_id, user_id).await.map(|_| false)
            } else {
                engine
                    .pay(order.order_id, user_id, None)
                    .await
                    .map(|_| true)
            }
        }
    }))
    .await;
    let mut paid = 0;
    for outcome in outcomes {
        match outcome {
            Ok(true) => paid += 1,
            Ok(false) | Err(EngineError::TooManyPendingOrders { .. }) => {}
            Err(error) => panic!("{error:?}"),
        }
    }
    assert_eq!(engine.product(1).unwrap().options[0].stock, 100_000 - paid);
    assert_audit_ok(&engine).await;
}

async fn two_hundred_concurrent_charges_on_one_user_lose_nothing(passivation: Passivation) {
    let engine = engine_with(passivation, catalog(3, 1_000, 10, 1)).await;
    let outcomes = race((1..=200).map(|amount| {
        let engine = engine.clone();
        async move { engine.charge(2, amount).await }
    }))
    .await;
    assert!(outcomes.iter().all(Result::is_ok));
    let expected = 1_000 + (1..=200).sum::<u64>();
    assert_eq!(engine.balance(2).await.unwrap(), expected);
    assert_audit_ok(&engine).await;
}

async fn one_order_paid_ten_times_at_once_is_paid_once(passivation: Passivation) {
    let engine = engine_with(passivation, catalog(3, 100_000, 10, 1)).await;
    let order = engine.place_order(1, line(1, 11, 1)).await.unwrap();
    let outcomes = race((0..10).map(|_| {
        let engine = engine.clone();
        async move { engine.pay(order.order_id, 1, None).await }
    }))
    .await;
    let paid = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let already = outcomes
        .iter()
        .filter(|o| matches!(o, Err(EngineError::Payment(PaymentError::AlreadyPaid(_)))))
        .count();
    assert_eq!((paid, already), (1, 9));
    assert_eq!(engine.balance(1).await.unwrap(), 50_000, "debited once");
    assert_audit_ok(&engine).await;
}

async fn one_coupon_on_two_orders_at_once_is_used_once(passivation: Passivation) {
    let engine = engine_with(passivation, catalog(3, 1_000_000, 10, 5)).await;
    engine.issue_coupon(1, 1).await.unwrap();
    for round in 0..20 {
        let first = engine
            .place_order(1, line(2, 21, 1))
            .await
            .unwrap()
            .order_id;
        let second = engine
            .place_order(1, line(2, 21, 1))
            .await
            .unwrap()
            .order_id;
        let outcomes = race([first, second].map(|order_id| {
            let engine = engine.clone();
            async move { engine.pay(order_id, 1, Some(1)).await }
        }))
        .await;
        let used = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        let expected = if round == 0 { 1 } else { 0 };
        assert_eq!(used, expected, "round {round}: {outcomes:?}");
        assert!(outcomes.iter().all(|o| o.is_ok()
            || matches!(
                o,
                Err(EngineError::Payment(PaymentError::CouponNotUsable { .. }))
            )));
        // Orders left unpaid are cancelled, so the user stays under the pending-order limit.
        for (order_id, outcome) in [first, second].iter().zip(&outcomes) {
            if outcome.is_err() {
                engine.cancel(*order_id, 1).await.unwrap();
            }
        }
    }
    assert_audit_ok(&engine).await;
}

async fn fifty_concurrent_orders_of_one_user_get_exactly_five_pending(passivation: Passivation) {
    let engine = engine_with(passivation, catalog(2, 1_000_000, 500, 5)).await;
    let outcomes = race((0..50).map(|_| {
        let engine = engine.clone();
        async move { engine.place_order(1, line(2, 21, 1)).await }
    }))
    .await;
    let placed: Vec<u64> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok().map(|order| order.order_id))
        .collect();
    let refused = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                Err(EngineError::TooManyPendingOrders {
                    user_id: 1,
                    limit: 5
                })
            )
        })
        .count();
    assert_eq!((placed.len(), refused), (5, 45));
    assert_eq!(
        engine.product(2).unwrap().options[0].stock,
        95,
        "refusals reserve nothing"
    );
    // A slot comes back when an order stops being PENDING: paid, cancelled or expired.
    engine.pay(placed[0], 1, None).await.unwrap();
    engine.cancel(placed[1], 1).await.unwrap();
    let again = race((0..10).map(|_| {
        let engine = engine.clone();
        async move { engine.place_order(1, line(2, 21, 1)).await }
    }))
    .await;
    assert_eq!(again.iter().filter(|outcome| outcome.is_ok()).count(), 2);
    assert!(
        engine.place_order(2, line(2, 21, 1)).await.is_ok(),
        "other users are not limited"
    );
    assert_audit_ok(&engine).await;
}

async fn concurrent_orders_of_one_user_never_pass_a_purchase_limit(passivation: Passivation) {
    let engine = engine_with(passivation, catalog(2, 1_000_000, 500, 5)).await;
    let limited = NewProduct {
        name: "Limited".into(),
        category: "home".into(),
        price: 100,
        options: vec![NewProductOption {
            name: "Only".into(),
            stock: 100,
        }],
        purchase_limit: Some(3),
    };
    let product = engine.create_product(limited).await.unwrap();
    let (product_id, option_id) = (product.id, product.options[0].id);
    // One unit each: the pending-order limit (5) lets up to five through at a time, the
    // purchase limit only three in all.
    let outcomes = race((0..50).map(|_| {
        let engine = engine.clone();
        async move { engine.place_order(1, line(product_id, option_id, 1)).await }
    }))
    .await;
    let placed: Vec<u64> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok().map(|order| order.order_id))
        .collect();
    assert_eq!(placed.len(), 3);
    for outcome in &outcomes {
        if let Err(error) = outcome {
            assert!(
                matches!(
                    error,
                    EngineError::Stock(StockError::PurchaseLimitExceeded { limit: 3, .. })
                        | EngineError::TooManyPendingOrders { .. }
                ),
                "{error}"
            );
        }
    }
    assert_eq!(engine.product(product_id).unwrap().options[0].stock, 97);
    // Paid units still count; cancelled ones come back, to one of ten racing orders.
    engine.pay(placed[0], 1, None).await.unwrap();
    assert!(matches!(
        engine.place_order(1, line(product_id, option_id, 1)).await,
        Err(EngineError::Stock(StockError::PurchaseLimitExceeded {
            held: 3,
            ..
        }))
    ));
    engine.cancel(placed[1], 1).await.unwrap();
    let again = race((0..10).map(|_| {
        let engine = engine.clone();
        async move { engine.place_order(1, line(product_id, option_id, 1)).await }
    }))
    .await;
    assert_eq!(again.iter().filter(|outcome| outcome.is_ok()).count(), 1);
    // A multi-line order past the limit reserves nothing anywhere.
    let mut lines = line(2, 21, 1);
    lines.extend(line(product_id, option_id, 2));
    assert!(engine.place_order(2, lines.clone()).await.is_ok());
    assert!(matches!(
        engine.place_order(2, lines).await,
        Err(EngineError::Stock(StockError::PurchaseLimitExceeded {
            user_id: 2,
            held: 2,
            requested: 2,
            ..
        }))
    ));
    assert_eq!(engine.product(2).unwrap().options[0].stock, 99);
    assert_audit_ok(&engine).await;
}

async fn payment_racing_expiry_over_many_orders(passivation: Passivation) {
    // A 30 ms expiry and payments spread over 0-59 ms: payments and timers genuinely collide.
    // Which one wins varies from run to run; the assertions hold for every interleaving: each
    // order ends paid xor expired, and money and stock agree with the outcome.
    let engine = engine_with_expiry_and(
        catalog(200, 100_000, 1_000, 1),
        Duration::from_millis(30),
        passivation,
    )
    .await;
    let outcomes = race((1..=200).map(|user_id| {
        let engine = engine.clone();
        async move {
            let order = engine.place_order(user_id, line(1, 11, 1)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(user_id % 60)).await;
            (
                order.order_id,
                user_id,
                engine.pay(order.order_id, user_id, None).await,
            )
        }
    }))
    .await;
    let mut paid = 0;
    for (order_id, user_id, outcome) in outcomes {
        let order = engine.order(order_id).await.unwrap();
        let balance = engine.balance(user_id).await.unwrap();
        match outcome {
            Ok(_) => {
                paid += 1;
                assert_eq!((order.status, balance), (OrderStatus::Paid, 50_000));
            }
            Err(EngineError::Payment(PaymentError::OrderExpired(_))) => {
                assert_eq!((order.status, balance), (OrderStatus::Expired, 100_000))
            }
            Err(other) => panic!("unexpected payment outcome {other:?}"),
        }
    }
    // Read with the gate closed: an expiry that won keeps its pass until its stock is back
    // (the refused payment did not wait for that release).
    let state = engine.read_state().await.unwrap();
    let sold = 1_000 - state.products[&1].options[0].available;
    assert_eq!(
        sold, paid,
        "stock left = stock minus exactly the paid orders"
    );
    assert_audit_ok(&engine).await;
}
