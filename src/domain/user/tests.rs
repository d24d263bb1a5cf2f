//! State transitions of a user: charge limits, payment (with and without coupons, and every
//! way it can fail without changing anything), expiry and cancel.
use super::*;
use crate::model::{Discount, OrderItem};

const MAX_BALANCE: Won = 100_000_000;

fn pending_order(order_id: OrderId, total: Won) -> Order {
    Order {
        order_id,
        user_id: 1,
        status: OrderStatus::Pending,
        items: vec![OrderItem {
            product_id: 1,
            option_id: 10,
            name: "Keyboard".into(),
            quantity: 1,
            unit_price: total,
            line_total: total,
        }],
        total_amount: total,
        coupon_id: None,
        discount_amount: None,
        paid_amount: None,
        created_at: Timestamp(0),
        expires_at: Timestamp(600_000),
        paid_at: None,
    }
}

fn coupon(coupon_id: CouponId, discount: Discount, expires_at: Option<Timestamp>) -> UserCoupon {
    UserCoupon {
        coupon_id,
        user_id: 1,
        name: "welcome".into(),
        discount,
        status: CouponStatus::Available,
        issued_at: Timestamp(0),
        used_at: None,
        order_id: None,
        expires_at,
    }
}

fn user_with_order(balance: Won, total: Won) -> UserState {
    let mut user = UserState::new(1, balance);
    user.orders.insert(7, pending_order(7, total));
    user
}

#[test]
fn charge_adds_and_counts() {
    let mut user = UserState::new(1, 100);
    assert_eq!(user.charge(50, MAX_BALANCE), Ok(150));
    assert_eq!(user.charged, 50);
}

#[test]
fn charge_over_the_balance_limit_changes_nothing() {
    let mut user = UserState::new(1, 90);
    assert!(user.charge(11, 100).is_err());
    assert!(
        user.charge(u64::MAX, u64::MAX).is_err(),
        "overflow is a limit error"
    );
    assert_eq!((user.balance, user.charged), (90, 0));
    assert_eq!(
        user.charge(10, 100),
        Ok(100),
        "exactly the limit is allowed"
    );
}

#[test]
fn pay_debits_and_marks_paid() {
    let mut user = user_with_order(10_000, 7_000);
    let payment = user.pay(7, None, Timestamp(1)).unwrap();
    assert_eq!((payment.paid_amount, payment.balance), (7_000, 3_000));
    let order = &user.orders[&7];
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(order.paid_amount, Some(7_000));
    assert_eq!(order.discount_amount, Some(0));
    assert_eq!(
        user.pay(7, None, Timestamp(2)),
        Err(PaymentError::AlreadyPaid(7))
    );
    assert_eq!(user.balance, 3_000, "a second payment takes nothing");
}

#[test]
fn pay_with_a_coupon_discounts_and_uses_it() {
    let mut user = user_with_order(10_000, 9_999);
    user.coupons
        .insert(3, coupon(3, Discount::Percent { percent: 10 }, None));
    let payment = user.pay(7, Some(3), Timestamp(5)).unwrap();
    assert_eq!((payment.discount_amount, payment.paid_amount), (999, 9_000));
    let coupon = &user.coupons[&3];
    assert_eq!(coupon.status, CouponStatus::Used);
    assert_eq!(
        (coupon.order_id, coupon.used_at),
        (Some(7), Some(Timestamp(5)))
    );
}

#[test]
fn a_used_coupon_cannot_pay_a_second_order() {
    let mut user = user_with_order(100_000, 5_000);
    user.orders.insert(8, pending_order(8, 5_000));
    user.coupons
        .insert(3, coupon(3, Discount::Fixed { amount: 1_000 }, None));
    user.pay(7, Some(3), Timestamp(1)).unwrap();
    let error = user.pay(8, Some(3), Timestamp(2)).unwrap_err();
    assert!(
        matches!(error, PaymentError::CouponNotUsable { reason, .. } if reason.contains("used"))
    );
    assert_eq!(user.orders[&8].status, OrderStatus::Pending);
}

#[test]
fn failed_payments_change_nothing() {
    let mut user = user_with_order(1_000, 5_000);
    user.coupons.insert(
        3,
        coupon(3, Discount::Fixed { amount: 500 }, Some(Timestamp(10))),
    );
    let before = user.clone();
    let insufficient = user.pay(7, Some(3), Timestamp(1)).unwrap_err();
    assert_eq!(
        insufficient,
        PaymentError::InsufficientBalance {
            balance: 1_000,
            needed: 4_500
        }
    );
    let expired = user.pay(7, Some(3), Timestamp(10)).unwrap_err();
    assert!(
        matches!(expired, PaymentError::CouponNotUsable { reason, .. } if reason.contains("expired"))
    );
    let not_held = user.pay(7, Some(4), Timestamp(1)).unwrap_err();
    assert!(
        matches!(not_held, PaymentError::CouponNotUsable { reason, .. } if reason.contains("hold"))
    );
    assert_eq!(
        user.pay(9, None, Timestamp(1)),
        Err(PaymentError::OrderNotFound(9))
    );
    assert_eq!(user, before);
}

#[test]
fn an_order_expires_only_once_its_deadline_is_reached() {
    let mut user = user_with_order(10_000, 1_000);
    assert!(user.expire_if_due(7, Timestamp(599_999)).is_none());
    assert!(user.expire_if_due(7, Timestamp(600_000)).is_some());
    assert!(
        user.expire_if_due(7, Timestamp(700_000)).is_none(),
        "only once"
    );
    assert_eq!(
        user.pay(7, None, Timestamp(1)),
        Err(PaymentError::OrderExpired(7))
    );
    assert_eq!(user.balance, 10_000);
}

#[test]
fn a_paid_order_neither_expires_nor_cancels() {
    let mut user = user_with_order(10_000, 1_000);
    user.pay(7, None, Timestamp(1)).unwrap();
    assert!(user.expire_if_due(7, Timestamp(u64::MAX)).is_none());
    assert_eq!(
        user.cancel(7).unwrap_err(),
        CancelError::NotCancellable {
            order_id: 7,
            status: OrderStatus::Paid
        }
    );
}

#[test]
fn cancel_is_for_pending_orders_only() {
    let mut user = user_with_order(10_000, 1_000);
    assert_eq!(user.cancel(7).unwrap().status, OrderStatus::Cancelled);
    assert!(matches!(
        user.cancel(7),
        Err(CancelError::NotCancellable { .. })
    ));
    assert_eq!(
        user.pay(7, None, Timestamp(1)),
        Err(PaymentError::Cancelled(7))
    );
    assert_eq!(user.cancel(8).unwrap_err(), CancelError::OrderNotFound(8));
}

#[test]
fn unused_coupons_past_expiry_show_as_expired() {
    let held = coupon(3, Discount::Fixed { amount: 1 }, Some(Timestamp(10)));
    assert_eq!(held.view_at(Timestamp(9)).status, CouponStatus::Available);
    assert_eq!(held.view_at(Timestamp(10)).status, CouponStatus::Expired);
}
