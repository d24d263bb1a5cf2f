//! Order and coupon expiry on tokio's paused clock: a 10-minute order expires at 10 minutes,
//! not a millisecond before, and gives its stock back exactly once; a paid or cancelled order
//! ignores its timer; a late payment is refused and expires the order on the spot.

mod helpers;

use std::time::Duration;

use commerce_engine::EngineError;
use commerce_engine::domain::coupon::IssueError;
use commerce_engine::domain::user::{CancelError, PaymentError};
use commerce_engine::engine::OrderLine;
use commerce_engine::model::{CouponStatus, OrderStatus};
use helpers::{EXPIRY, assert_audit_ok, settle, small_engine};

fn keyboards(quantity: u64) -> Vec<OrderLine> {
    vec![OrderLine {
        product_id: 1,
        option_id: Some(12),
        quantity,
    }]
}

fn blue_keyboards_left(engine: &commerce_engine::Engine) -> u64 {
    engine.product(1).unwrap().options[1].stock
}

#[tokio::test(start_paused = true)]
async fn an_unpaid_order_expires_at_ten_minutes_not_before() {
    let engine = small_engine().await;
    let order = engine.place_order(1, keyboards(3)).await.unwrap();
    assert_eq!(blue_keyboards_left(&engine), 2);

    tokio::time::advance(EXPIRY - Duration::from_millis(2)).await;
    settle().await; // now one millisecond before the deadline
    assert_eq!(
        engine.order(order.order_id).await.unwrap().status,
        OrderStatus::Pending
    );
    assert_eq!(blue_keyboards_left(&engine), 2);

    settle().await; // the deadline
    settle().await;
    assert_eq!(
        engine.order(order.order_id).await.unwrap().status,
        OrderStatus::Expired
    );
    assert_eq!(blue_keyboards_left(&engine), 5, "stock restored");

    tokio::time::advance(EXPIRY).await;
    settle().await;
    assert_eq!(blue_keyboards_left(&engine), 5, "restored exactly once");
    assert_eq!(engine.watched_deadlines().await.unwrap(), 0);
    assert_audit_ok(&engine).await;
}

#[tokio::test(start_paused = true)]
async fn a_paid_order_ignores_its_timer() {
    let engine = small_engine().await;
    let order = engine.place_order(1, keyboards(1)).await.unwrap();
    let cancelled = engine.place_order(1, keyboards(1)).await.unwrap();
    assert_eq!(engine.watched_deadlines().await.unwrap(), 2);
    engine.pay(order.order_id, 1, None).await.unwrap();
    engine.cancel(cancelled.order_id, 1).await.unwrap();
    assert_eq!(
        engine.watched_deadlines().await.unwrap(),
        0,
        "the supervisor watches PENDING orders only"
    );
    tokio::time::advance(EXPIRY * 2).await;
    settle().await;
    assert_eq!(
        engine.order(order.order_id).await.unwrap().status,
        OrderStatus::Paid
    );
    assert_eq!(
        blue_keyboards_left(&engine),
        4,
        "a paid order never gets its stock back"
    );
    assert_eq!(engine.balance(1).await.unwrap(), 50_000);
    assert_audit_ok(&engine).await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_order_releases_once_when_its_timer_fires() {
    let engine = small_engine().await;
    let order = engine.place_order(1, keyboards(2)).await.unwrap();
    engine.cancel(order.order_id, 1).await.unwrap();
    assert_eq!(blue_keyboards_left(&engine), 5);
    let other = engine.place_order(2, keyboards(5)).await.unwrap();
    tokio::time::advance(EXPIRY - Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(
        blue_keyboards_left(&engine),
        0,
        "the cancelled order's timer gave nothing back"
    );
    assert_eq!(
        engine.order(order.order_id).await.unwrap().status,
        OrderStatus::Cancelled
    );
    assert_eq!(
        engine.order(other.order_id).await.unwrap().status,
        OrderStatus::Pending
    );
    assert_audit_ok(&engine).await;
}

#[tokio::test(start_paused = true)]
async fn a_payment_after_the_deadline_is_refused_and_charges_nothing() {
    let engine = small_engine().await;
    let order = engine.place_order(1, keyboards(1)).await.unwrap();
    tokio::time::advance(EXPIRY).await;
    let late = engine.pay(order.order_id, 1, None).await;
    assert_eq!(
        late,
        Err(EngineError::Payment(PaymentError::OrderExpired(
            order.order_id
        )))
    );
    settle().await;
    assert_eq!(
        engine.order(order.order_id).await.unwrap().status,
        OrderStatus::Expired
    );
    assert_eq!(engine.balance(1).await.unwrap(), 100_000);
    assert_eq!(
        blue_keyboards_left(&engine),
        5,
        "released once, by whichever came first"
    );
    let cancel = engine.cancel(order.order_id, 1).await;
    assert!(matches!(
        cancel,
        Err(EngineError::Cancel(CancelError::NotCancellable { .. }))
    ));
    assert_audit_ok(&engine).await;
}

#[tokio::test(start_paused = true)]
async fn many_orders_expire_in_deadline_order() {
    let engine = small_engine().await;
    let mut orders = Vec::new();
    for user_id in 1..=5 {
        orders.push(
            engine
                .place_order(user_id, keyboards(1))
                .await
                .unwrap()
                .order_id,
        );
        tokio::time::advance(Duration::from_secs(60)).await;
    }
    // Orders were placed at minutes 0..=4 and it is now minute 5: at minute 10 exactly the
    // first one is due.
    tokio::time::advance(Duration::from_secs(5 * 60)).await;
    settle().await;
    let statuses = |engine: commerce_engine::Engine, orders: Vec<u64>| async move {
        let mut statuses = Vec::new();
        for order_id in orders {
            statuses.push(engine.order(order_id).await.unwrap().status);
        }
        statuses
    };
    let now = statuses(engine.clone(), orders.clone()).await;
    assert_eq!(now[0], OrderStatus::Expired);
    assert!(
        now[1..]
            .iter()
            .all(|status| *status == OrderStatus::Pending),
        "{now:?}"
    );
    tokio::time::advance(Duration::from_secs(4 * 60)).await;
    settle().await;
    let later = statuses(engine.clone(), orders).await;
    assert!(
        later.iter().all(|status| *status == OrderStatus::Expired),
        "{later:?}"
    );
    assert_eq!(blue_keyboards_left(&engine), 5);
    assert_audit_ok(&engine).await;
}

#[tokio::test(start_paused = true)]
async fn coupons_expire_for_issuing_and_for_paying() {
    let state = helpers::catalog(3, 100_000, 10, 10);
    let mut state = state;
    let soon = commerce_engine::clock::Timestamp::parse(helpers::START)
        .unwrap()
        .saturating_add(Duration::from_secs(60));
    state.coupons.get_mut(&1).unwrap().expires_at = Some(soon);
    let engine = helpers::engine(state).await;
    engine.issue_coupon(1, 1).await.unwrap();
    let order = engine.place_order(1, keyboards(1)).await.unwrap();
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(
        engine.issue_coupon(1, 2).await,
        Err(EngineError::Issue(IssueError::Expired(1)))
    );
    let held = engine.user_coupons(1).await.unwrap();
    assert_eq!(held[0].status, CouponStatus::Expired);
    let payment = engine.pay(order.order_id, 1, Some(1)).await;
    assert!(
        matches!(payment, Err(EngineError::Payment(PaymentError::CouponNotUsable { reason, .. })) if reason.contains("expired"))
    );
    assert!(
        engine.pay(order.order_id, 1, None).await.is_ok(),
        "the order itself is still payable"
    );
    assert_audit_ok(&engine).await;
}

#[tokio::test(start_paused = true)]
async fn an_expired_order_gives_its_pending_slot_back() {
    let engine = small_engine().await;
    for _ in 0..5 {
        engine.place_order(3, keyboards(1)).await.unwrap();
    }
    let api = helpers::Api::new(&engine);
    let body = serde_json::json!({"user_id": 3, "items": [{"product_id": 1, "option_id": 11, "quantity": 1}]});
    let refused = api.post("/orders", body.clone()).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (409, "TOO_MANY_PENDING_ORDERS")
    );
    tokio::time::advance(EXPIRY).await;
    settle().await;
    assert_eq!(api.post("/orders", body).await.status.as_u16(), 201);
    assert_audit_ok(&engine).await;
}
