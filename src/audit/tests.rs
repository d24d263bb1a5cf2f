//! The audit passes on a consistent state and catches each kind of corruption.

use std::collections::BTreeMap;

use super::*;
use crate::domain::coupon::CouponState;
use crate::domain::product::{OptionStock, ProductState, Reservation, StockLine};
use crate::domain::user::UserState;
use crate::model::{Discount, OrderItem, UserCoupon};

const NOW: Timestamp = Timestamp(1_000_000_000);
const PAID_AT: Timestamp = Timestamp(999_000_000);

fn order(order_id: OrderId, status: OrderStatus, quantity: u32) -> Order {
    let total = 10_000 * u64::from(quantity);
    let paid = status == OrderStatus::Paid;
    Order {
        order_id,
        user_id: 1,
        status,
        items: vec![OrderItem {
            product_id: 1,
            option_id: 11,
            name: "Mug".into(),
            quantity,
            unit_price: 10_000,
            line_total: total,
        }],
        total_amount: total,
        coupon_id: paid.then_some(7),
        discount_amount: paid.then_some(3_000),
        paid_amount: paid.then_some(total - 3_000),
        created_at: Timestamp(NOW.0 - 60_000),
        expires_at: Timestamp(NOW.0 + 540_000),
        paid_at: paid.then_some(PAID_AT),
    }
}

/// One user with a PENDING (2 units), a PAID (3, with coupon 7), an EXPIRED (1) and a
/// CANCELLED (1) order on option 11, which started with 10.
fn consistent() -> EngineState {
    let mut user = UserState::new(1, 100_000);
    user.charged = 5_000;
    user.paid = 27_000;
    user.balance = 100_000 + 5_000 - 27_000;
    for (id, status, quantity) in [
        (1, OrderStatus::Pending, 2),
        (2, OrderStatus::Paid, 3),
        (3, OrderStatus::Expired, 1),
        (4, OrderStatus::Cancelled, 1),
    ] {
        user.orders.insert(id, order(id, status, quantity));
    }
    user.coupons.insert(
        7,
        UserCoupon {
            coupon_id: 7,
            user_id: 1,
            name: "3,000 off".into(),
            discount: Discount::Fixed { amount: 3_000 },
            status: CouponStatus::Used,
            issued_at: Timestamp(0),
            used_at: Some(PAID_AT),
            order_id: Some(2),
            expires_at: None,
        },
    );
    let product = ProductState {
        id: 1,
        name: "Mug".into(),
        category: "home".into(),
        price: 10_000,
        options: vec![OptionStock {
            id: 11,
            name: "White".into(),
            initial: 10,
            restocked: 0,
            available: 5,
            reserved: 2,
            sold: 3,
        }],
        purchase_limit: None,
        reservations: BTreeMap::from([(
            1,
            Reservation {
                user_id: 1,
                lines: vec![StockLine {
                    option_id: 11,
                    quantity: 2,
                }],
            },
        )]),
        bought: BTreeMap::new(),
    };
    let mut coupon = CouponState::new(
        7,
        "3,000 off".into(),
        Discount::Fixed { amount: 3_000 },
        5,
        None,
    );
    coupon.remaining = 4;
    coupon.holders.insert(1);
    let mut state = EngineState {
        users: [(1, user)].into(),
        products: [(1, product)].into(),
        coupons: [(7, coupon)].into(),
        ..EngineState::default()
    };
    state.sales.record(PAID_AT.day(), &[(1, 3)]);
    state
}

fn failing(state: &EngineState) -> Vec<&'static str> {
    let report = audit(state, NOW);
    assert_eq!(report.ok, report.checks.iter().all(|check| check.ok));
    report
        .checks
        .iter()
        .filter(|check| !check.ok)
        .map(|check| check.name)
        .collect()
}

#[test]
fn a_consistent_state_passes_every_check() {
    let report = audit(&consistent(), NOW);
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.checks.len(), 6);
}

#[test]
fn purchase_counts_that_disagree_with_the_orders_or_pass_the_limit_are_caught() {
    let mut state = consistent();
    // Order 1 (PENDING, 2 units) and order 2 (PAID) are user 1's, both of product 1.
    let product = state.products.get_mut(&1).unwrap();
    product.purchase_limit = Some(10);
    assert_eq!(failing(&state), ["stock_conservation"], "nothing counted");
    let units: u64 = state.users[&1]
        .orders
        .values()
        .filter(|order| matches!(order.status, OrderStatus::Pending | OrderStatus::Paid))
        .flat_map(|order| &order.items)
        .filter(|item| item.product_id == 1)
        .map(|item| u64::from(item.quantity))
        .sum();
    let product = state.products.get_mut(&1).unwrap();
    product.bought.insert(1, units);
    assert!(audit(&state, NOW).ok, "counted as the orders hold");
    state.products.get_mut(&1).unwrap().purchase_limit = Some(units - 1);
    assert_eq!(failing(&state), ["stock_conservation"], "over the limit");
}

#[test]
fn a_running_total_that_drifts_from_the_paid_orders_is_caught() {
    let mut state = consistent();
    let user = state.users.get_mut(&1).unwrap();
    user.paid += 1;
    user.balance -= 1;
    assert_eq!(failing(&state), ["money"]);
}

#[test]
fn stock_that_does_not_add_up_is_caught() {
    let mut state = consistent();
    state.products.get_mut(&1).unwrap().options[0].available += 1;
    assert_eq!(failing(&state), ["stock_conservation"]);
}

#[test]
fn sold_stock_without_paid_orders_is_caught() {
    let mut state = consistent();
    let option = &mut state.products.get_mut(&1).unwrap().options[0];
    option.sold += 1;
    option.available -= 1;
    assert_eq!(failing(&state), ["stock_conservation"]);
}

#[test]
fn a_coupon_count_off_by_one_is_caught() {
    let mut state = consistent();
    state.coupons.get_mut(&7).unwrap().remaining = 5;
    assert_eq!(failing(&state), ["coupon_quantity"]);
}

#[test]
fn a_coupon_held_by_a_user_but_not_listed_is_caught() {
    let mut state = consistent();
    state.coupons.get_mut(&7).unwrap().holders.clear();
    state.coupons.get_mut(&7).unwrap().remaining = 5;
    assert_eq!(failing(&state), ["coupon_quantity"]);
}

#[test]
fn a_paid_order_naming_an_unused_coupon_is_caught() {
    let mut state = consistent();
    let coupon = state
        .users
        .get_mut(&1)
        .unwrap()
        .coupons
        .get_mut(&7)
        .unwrap();
    coupon.status = CouponStatus::Available;
    coupon.order_id = None;
    assert_eq!(failing(&state), ["coupon_use"]);
}

#[test]
fn money_from_nowhere_is_caught() {
    let mut state = consistent();
    state.users.get_mut(&1).unwrap().balance += 1;
    assert_eq!(failing(&state), ["money"]);
}

#[test]
fn a_pending_order_past_its_deadline_is_caught() {
    let mut state = consistent();
    let expires_at = |state: &mut EngineState, at| {
        let user = state.users.get_mut(&1).unwrap();
        user.orders.get_mut(&1).unwrap().expires_at = at;
    };
    expires_at(&mut state, Timestamp(NOW.0 - 1_001));
    assert_eq!(failing(&state), ["order_states"]);
    expires_at(&mut state, Timestamp(NOW.0 - 1_000));
    assert!(failing(&state).is_empty(), "within the one-second grace");
}

#[test]
fn an_expired_order_still_holding_stock_is_caught() {
    let mut state = consistent();
    let lines = vec![StockLine {
        option_id: 11,
        quantity: 1,
    }];
    state
        .products
        .get_mut(&1)
        .unwrap()
        .reservations
        .insert(3, Reservation { user_id: 1, lines });
    state.products.get_mut(&1).unwrap().options[0].reserved += 1;
    state.products.get_mut(&1).unwrap().options[0].available -= 1;
    let failures = failing(&state);
    assert!(failures.contains(&"order_states"), "{failures:?}");
}

#[test]
fn sales_statistics_that_drift_from_paid_orders_are_caught() {
    let mut state = consistent();
    state.sales.record(PAID_AT.day(), &[(1, 1)]);
    assert_eq!(failing(&state), ["popular_stats"]);
}

#[test]
fn details_name_the_offender() {
    let mut state = consistent();
    state.users.get_mut(&1).unwrap().balance = 0;
    let report = audit(&state, NOW);
    let money = report
        .checks
        .iter()
        .find(|check| check.name == "money")
        .unwrap();
    assert!(money.detail.contains("user 1"), "{}", money.detail);
}

/// `consistent()` with its PAID order (2, with coupon 7) and its EXPIRED one (3) moved to the
/// archive: returns the state and the archive's orders.
fn archived() -> (EngineState, Vec<Order>) {
    let mut state = consistent();
    let user = state.users.get_mut(&1).unwrap();
    let moved = vec![user.orders[&2].clone(), user.orders[&3].clone()];
    assert_eq!(user.archive(&[2, 3]), Ok(2));
    state.archived_orders = 2;
    (state, moved)
}

#[test]
fn with_orders_archived_the_running_totals_still_pass_and_the_full_audit_matches_them() {
    let (state, moved) = archived();
    let report = audit(&state, NOW);
    assert!(report.ok, "{report:#?}");
    let full = audit_with_archive(&state, &moved, NOW);
    assert!(full.ok, "{full:#?}");
    // An order both in memory and in the archive (a crash between the two) counts once.
    let full = audit_with_archive(&consistent(), &moved, NOW);
    assert!(full.ok, "{full:#?}");
}

#[test]
fn the_full_audit_catches_an_archive_that_lost_an_order() {
    let (state, moved) = archived();
    let failures: Vec<_> = audit_with_archive(&state, &moved[1..], NOW)
        .checks
        .into_iter()
        .filter(|check| !check.ok)
        .map(|check| check.name)
        .collect();
    assert!(failures.contains(&"money"), "{failures:?}");
    assert!(failures.contains(&"stock_conservation"), "{failures:?}");
    assert!(failures.contains(&"coupon_use"), "{failures:?}");
    assert!(failures.contains(&"popular_stats"), "{failures:?}");
}

#[test]
fn with_orders_archived_totals_below_what_memory_holds_are_caught() {
    let (mut state, _) = archived();
    state.products.get_mut(&1).unwrap().options[0].sold -= 1;
    state.products.get_mut(&1).unwrap().options[0].available += 1;
    assert_eq!(failing(&state), ["popular_stats"]);
    let (mut state, _) = archived();
    let user = state.users.get_mut(&1).unwrap();
    user.coupons.get_mut(&7).unwrap().order_id = Some(1);
    assert_eq!(failing(&state), ["coupon_use"]);
}
