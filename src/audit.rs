//! The invariants of docs/spec.md §5, checked over one consistent `EngineState`. Pure: the
//! engine, the snapshot code (before writing, after reading) and the simulator all call
//! `audit`, and unit tests corrupt a state to prove each check can fail.
//!
//! **Archived orders.** Ended orders leave memory for the archive (`src/archive.rs`), so the
//! state may not hold every order. What the invariants need of them is kept as running totals
//! changed with the same messages: each user's `paid`, each option's `sold`, each product's
//! per-user `bought`, the daily sales, each user coupon's USED mark. `audit` checks the totals
//! and what memory holds: exactly while no order was archived (`archived_orders == 0`), and
//! as bounds once some were (a total covers at least the orders in memory; sales per product
//! equal the units sold). `audit_with_archive` is the full check: the archive's orders join
//! the state's (an order in both counts once) and every total must match the orders exactly.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::clock::Timestamp;
use crate::domain::state::EngineState;
use crate::model::{
    CouponId, CouponStatus, OptionId, Order, OrderId, OrderStatus, ProductId, UserId,
};

/// A PENDING order may outlive its deadline by this much (the timer's slack) before it counts
/// as a violation.
const EXPIRY_GRACE_MS: u64 = 1_000;
/// At most this many violations are spelled out per check.
const DETAIL_LIMIT: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditReport {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl AuditReport {
    /// The failing checks as `name: detail; name: detail` (empty when all pass).
    pub fn failures(&self) -> String {
        let failed: Vec<_> = self
            .checks
            .iter()
            .filter(|check| !check.ok)
            .map(|check| format!("{}: {}", check.name, check.detail))
            .collect();
        failed.join("; ")
    }
}

/// Runs every check over `state` as of `now`, without the archive.
pub fn audit(state: &EngineState, now: Timestamp) -> AuditReport {
    let orders: Vec<&Order> = state
        .users
        .values()
        .flat_map(|u| u.orders.values())
        .collect();
    let complete = state.archived_orders == 0;
    audit_orders(state, &orders, complete, now)
}

/// The full audit: every check over the state's orders and `archived` ones (the archive's
/// content), with every running total matched against the orders exactly.
pub fn audit_with_archive(state: &EngineState, archived: &[Order], now: Timestamp) -> AuditReport {
    let mut orders: Vec<&Order> = state
        .users
        .values()
        .flat_map(|u| u.orders.values())
        .collect();
    let in_memory: BTreeSet<OrderId> = orders.iter().map(|order| order.order_id).collect();
    orders.extend(archived.iter().filter(|o| !in_memory.contains(&o.order_id)));
    audit_orders(state, &orders, true, now)
}

/// `orders` are all the orders there are when `complete`, else those in memory.
fn audit_orders(
    state: &EngineState,
    orders: &[&Order],
    complete: bool,
    now: Timestamp,
) -> AuditReport {
    let by_user = |status: OrderStatus| {
        let mut sums: BTreeMap<UserId, Vec<&Order>> = BTreeMap::new();
        for order in orders.iter().filter(|order| order.status == status) {
            sums.entry(order.user_id).or_default().push(order);
        }
        sums
    };
    let paid = by_user(OrderStatus::Paid);
    let checks = vec![
        // Purchase-limit counts are stock held per user: part of the same invariant, so the
        // report keeps docs/spec.md §5's six names.
        check(
            "stock_conservation",
            both(
                stock_conservation(state, orders, complete),
                purchase_limits(state, orders, complete),
            ),
        ),
        check("coupon_quantity", coupon_quantity(state)),
        check("coupon_use", coupon_use(state, &paid, complete)),
        check("money", money(state, &paid, complete)),
        check("order_states", order_states(state, orders, now)),
        check("popular_stats", popular_stats(state, orders, complete)),
    ];
    AuditReport {
        ok: checks.iter().all(|check| check.ok),
        checks,
    }
}

/// Builds a check from its list of violations (or a summary when there are none).
fn check(name: &'static str, outcome: Result<String, Vec<String>>) -> Check {
    match outcome {
        Ok(summary) => Check {
            name,
            ok: true,
            detail: summary,
        },
        Err(violations) => {
            let mut detail: Vec<String> = violations.iter().take(DETAIL_LIMIT).cloned().collect();
            if violations.len() > DETAIL_LIMIT {
                detail.push(format!("and {} more", violations.len() - DETAIL_LIMIT));
            }
            Check {
                name,
                ok: false,
                detail: detail.join("; "),
            }
        }
    }
}

/// Whether a running `total` agrees with what the `counted` orders add up to: exactly when
/// the orders are `complete`, and at least when some have left for the archive.
fn covers<T: PartialOrd>(complete: bool, total: T, counted: T) -> bool {
    match complete {
        true => total == counted,
        false => total >= counted,
    }
}

/// Two checks reported as one.
fn both(
    first: Result<String, Vec<String>>,
    second: Result<String, Vec<String>>,
) -> Result<String, Vec<String>> {
    match (first, second) {
        (Ok(first), Ok(second)) => Ok(format!("{first}; {second}")),
        (Err(mut first), Err(second)) => {
            first.extend(second);
            Err(first)
        }
        (Err(violations), Ok(_)) | (Ok(_), Err(violations)) => Err(violations),
    }
}

fn verdict(violations: Vec<String>, summary: String) -> Result<String, Vec<String>> {
    if violations.is_empty() {
        Ok(summary)
    } else {
        Err(violations)
    }
}

/// Sums the quantity per (product, option) over the orders in `status`.
fn quantities(orders: &[&Order], status: OrderStatus) -> BTreeMap<(ProductId, OptionId), u64> {
    let mut sums = BTreeMap::new();
    for order in orders.iter().filter(|order| order.status == status) {
        for item in &order.items {
            *sums.entry((item.product_id, item.option_id)).or_default() += u64::from(item.quantity);
        }
    }
    sums
}

fn stock_conservation(
    state: &EngineState,
    orders: &[&Order],
    complete: bool,
) -> Result<String, Vec<String>> {
    let pending = quantities(orders, OrderStatus::Pending);
    let paid = quantities(orders, OrderStatus::Paid);
    let mut violations = Vec::new();
    let mut option_count = 0;
    for product in state.products.values() {
        for option in &product.options {
            option_count += 1;
            let key = (product.id, option.id);
            let stocked = option.initial.checked_add(option.restocked);
            let accounted = option
                .available
                .checked_add(option.reserved)
                .and_then(|sum| sum.checked_add(option.sold));
            if stocked.is_none() || stocked != accounted {
                violations.push(format!(
                    "option {}: initial {} + restocked {} != available {} + reserved {} + sold {}",
                    option.id,
                    option.initial,
                    option.restocked,
                    option.available,
                    option.reserved,
                    option.sold
                ));
            }
            let pending_quantity = pending.get(&key).copied().unwrap_or(0);
            if option.reserved != pending_quantity {
                violations.push(format!(
                    "option {}: reserved {} but PENDING orders hold {pending_quantity}",
                    option.id, option.reserved
                ));
            }
            let paid_quantity = paid.get(&key).copied().unwrap_or(0);
            if !covers(complete, option.sold, paid_quantity) {
                violations.push(format!(
                    "option {}: sold {} but PAID orders hold {paid_quantity}",
                    option.id, option.sold
                ));
            }
        }
    }
    verdict(violations, format!("{option_count} options balance"))
}

fn coupon_quantity(state: &EngineState) -> Result<String, Vec<String>> {
    let mut held: BTreeMap<CouponId, BTreeSet<UserId>> = BTreeMap::new();
    for user in state.users.values() {
        for &coupon_id in user.coupons.keys() {
            held.entry(coupon_id).or_default().insert(user.id);
        }
    }
    let mut violations = Vec::new();
    let mut issued_total = 0;
    for coupon in state.coupons.values() {
        let issued = coupon.total.checked_sub(coupon.remaining);
        match issued {
            Some(issued) if issued == coupon.holders.len() as u64 => issued_total += issued,
            _ => violations.push(format!(
                "coupon {}: total {} - remaining {} != {} holders",
                coupon.id,
                coupon.total,
                coupon.remaining,
                coupon.holders.len()
            )),
        }
        let holders_in_users = held.remove(&coupon.id).unwrap_or_default();
        if holders_in_users != coupon.holders {
            violations.push(format!(
                "coupon {}: the coupon lists {} holders, users hold {}",
                coupon.id,
                coupon.holders.len(),
                holders_in_users.len()
            ));
        }
    }
    for coupon_id in held.keys() {
        violations.push(format!(
            "users hold coupon {coupon_id}, which does not exist"
        ));
    }
    verdict(violations, format!("{issued_total} coupons issued"))
}

/// Each user coupon is USED iff exactly one PAID order names it. With orders archived, a USED
/// coupon whose order is no longer in memory is taken on trust (the full audit checks it).
fn coupon_use(
    state: &EngineState,
    paid: &BTreeMap<UserId, Vec<&Order>>,
    complete: bool,
) -> Result<String, Vec<String>> {
    let mut violations = Vec::new();
    let mut used = 0;
    for user in state.users.values() {
        let mut paying: BTreeMap<CouponId, Vec<OrderId>> = BTreeMap::new();
        for order in paid.get(&user.id).into_iter().flatten() {
            if let Some(coupon_id) = order.coupon_id {
                paying.entry(coupon_id).or_default().push(order.order_id);
            }
        }
        for (&coupon_id, coupon) in &user.coupons {
            let orders = paying.remove(&coupon_id).unwrap_or_default();
            let is_used = coupon.status == CouponStatus::Used;
            let archived = |order_id: &OrderId| !user.orders.contains_key(order_id);
            let consistent = match (is_used, orders.as_slice()) {
                (true, [order_id]) => coupon.order_id == Some(*order_id),
                (true, []) if !complete => coupon.order_id.as_ref().is_some_and(archived),
                (false, []) => coupon.order_id.is_none(),
                _ => false,
            };
            if !consistent || coupon.coupon_id != coupon_id || coupon.user_id != user.id {
                violations.push(format!(
                    "user {} coupon {coupon_id}: status {:?} (order {:?}) but PAID orders naming it: {orders:?}",
                    user.id, coupon.status, coupon.order_id
                ));
            }
            used += u64::from(is_used);
        }
        for (coupon_id, orders) in paying {
            violations.push(format!(
                "user {}: PAID orders {orders:?} name coupon {coupon_id}, which the user does not hold",
                user.id
            ));
        }
    }
    verdict(
        violations,
        format!("{used} coupons used, each by one PAID order"),
    )
}

fn money(
    state: &EngineState,
    paid_orders: &BTreeMap<UserId, Vec<&Order>>,
    complete: bool,
) -> Result<String, Vec<String>> {
    let mut violations = Vec::new();
    let (mut balances, mut inflow, mut paid_total) = (0u128, 0u128, 0u128);
    for user in state.users.values() {
        let paid: u128 = paid_orders
            .get(&user.id)
            .into_iter()
            .flatten()
            .map(|order| u128::from(order.paid_amount.unwrap_or(0)))
            .sum();
        if !covers(complete, u128::from(user.paid), paid) {
            violations.push(format!(
                "user {}: running total paid {} != {paid} paid by its PAID orders",
                user.id, user.paid
            ));
        }
        let received = u128::from(user.initial_balance) + u128::from(user.charged);
        if received.checked_sub(u128::from(user.paid)) != Some(u128::from(user.balance)) {
            violations.push(format!(
                "user {}: balance {} != initial {} + charged {} - paid {}",
                user.id, user.balance, user.initial_balance, user.charged, user.paid
            ));
        }
        balances += u128::from(user.balance);
        inflow += received;
        paid_total += u128::from(user.paid);
    }
    verdict(
        violations,
        format!("balances {balances} = initial and charged {inflow} - paid {paid_total}"),
    )
}

fn order_states(
    state: &EngineState,
    orders: &[&Order],
    now: Timestamp,
) -> Result<String, Vec<String>> {
    let mut violations = Vec::new();
    let reserving: BTreeSet<OrderId> = state
        .products
        .values()
        .flat_map(|product| product.reservations.keys().copied())
        .collect();
    let mut seen = BTreeSet::new();
    for user in state.users.values() {
        for (&order_id, order) in &user.orders {
            if order.order_id != order_id || order.user_id != user.id || !seen.insert(order_id) {
                violations.push(format!(
                    "order {order_id}: filed under user {} inconsistently or twice",
                    user.id
                ));
            }
        }
    }
    for order in orders {
        let id = order.order_id;
        let paid_fields = [
            order.paid_at.is_some(),
            order.paid_amount.is_some(),
            order.discount_amount.is_some(),
        ];
        match order.status {
            OrderStatus::Pending if order.expires_at.0 + EXPIRY_GRACE_MS < now.0 => violations
                .push(format!(
                    "order {id}: PENDING {} ms past its expiry",
                    now.0 - order.expires_at.0
                )),
            OrderStatus::Pending if !reserving.contains(&id) => {
                violations.push(format!("order {id}: PENDING without a reservation"))
            }
            OrderStatus::Expired | OrderStatus::Cancelled | OrderStatus::Paid
                if reserving.contains(&id) =>
            {
                violations.push(format!(
                    "order {id}: {:?} still holds a reservation",
                    order.status
                ))
            }
            OrderStatus::Paid if paid_fields.contains(&false) => {
                violations.push(format!("order {id}: PAID without payment details"))
            }
            _ => {}
        }
        if order.status != OrderStatus::Paid && paid_fields.contains(&true) {
            violations.push(format!(
                "order {id}: {:?} with payment details",
                order.status
            ));
        }
    }
    for order_id in reserving.difference(&seen) {
        violations.push(format!(
            "a reservation names order {order_id}, which no user has"
        ));
    }
    verdict(
        violations,
        format!("{} orders, each in one state", orders.len()),
    )
}

/// A product's count of units per user equals what that user's PENDING and PAID orders hold of
/// it, and stays within the product's limit; a product without a limit counts nothing.
fn purchase_limits(
    state: &EngineState,
    orders: &[&Order],
    complete: bool,
) -> Result<String, Vec<String>> {
    let mut held: BTreeMap<(ProductId, UserId), u64> = BTreeMap::new();
    for order in orders {
        if matches!(order.status, OrderStatus::Pending | OrderStatus::Paid) {
            for item in &order.items {
                *held.entry((item.product_id, order.user_id)).or_default() +=
                    u64::from(item.quantity);
            }
        }
    }
    let mut violations = Vec::new();
    let mut limited = 0;
    for product in state.products.values() {
        let Some(limit) = product.purchase_limit else {
            if !product.bought.is_empty() {
                violations.push(format!(
                    "product {}: counts units without a limit",
                    product.id
                ));
            }
            continue;
        };
        limited += 1;
        let expected: BTreeMap<UserId, u64> = held
            .range((product.id, 0)..=(product.id, UserId::MAX))
            .map(|(&(_, user_id), &units)| (user_id, units))
            .collect();
        let matches = match complete {
            true => product.bought == expected,
            false => expected
                .iter()
                .all(|(user, units)| product.bought.get(user).is_some_and(|held| held >= units)),
        };
        if !matches {
            violations.push(format!(
                "product {}: counts {:?} units per user, orders hold {expected:?}",
                product.id, product.bought
            ));
        }
        if let Some((user_id, units)) = product.bought.iter().find(|(_, units)| **units > limit) {
            violations.push(format!(
                "product {}: user {user_id} holds {units}, over the limit of {limit}",
                product.id
            ));
        }
    }
    verdict(
        violations,
        format!("{limited} limited products, every user within its limit"),
    )
}

/// The daily sales equal the aggregation of PAID orders; with orders archived, they cover at
/// least those in memory and add up, per product, to the units its options sold.
fn popular_stats(
    state: &EngineState,
    orders: &[&Order],
    complete: bool,
) -> Result<String, Vec<String>> {
    let mut expected: BTreeMap<(u64, ProductId), u64> = BTreeMap::new();
    for order in orders
        .iter()
        .filter(|order| order.status == OrderStatus::Paid)
    {
        let day = order.paid_at.map_or(0, Timestamp::day);
        for item in &order.items {
            *expected.entry((day, item.product_id)).or_default() += u64::from(item.quantity);
        }
    }
    let mut violations = Vec::new();
    let keys: BTreeSet<_> = expected
        .keys()
        .chain(state.sales.daily.keys())
        .copied()
        .collect();
    for key in keys {
        let (want, have) = (expected.get(&key), state.sales.daily.get(&key));
        // `None` orders below any count, so "at least" reads the same for absent entries.
        if !covers(complete, have, want) {
            violations.push(format!(
                "day {} product {}: statistics say {have:?}, PAID orders {want:?}",
                key.0, key.1
            ));
        }
    }
    if !complete {
        let mut sold_by_sales: BTreeMap<ProductId, u64> = BTreeMap::new();
        for (&(_, product_id), &quantity) in &state.sales.daily {
            *sold_by_sales.entry(product_id).or_default() += quantity;
        }
        for product in state.products.values() {
            let sold: u64 = product.options.iter().map(|option| option.sold).sum();
            let counted = sold_by_sales.get(&product.id).copied().unwrap_or(0);
            if sold != counted {
                violations.push(format!(
                    "product {}: statistics count {counted} sold, its options {sold}",
                    product.id
                ));
            }
        }
    }
    verdict(
        violations,
        format!("{} day-product totals match", expected.len()),
    )
}

#[cfg(test)]
mod tests;
