//! The buyers' own record of what succeeded, and the audit built on it. The simulator observes
//! the shop before and after the run (balances, stock, coupons, order statuses) and checks that
//! the difference is exactly what the buyers were told happened: no lost or invented money, no
//! oversold unit, no coupon issued or used twice, every order in the state its buyer left it.

use std::collections::{BTreeMap, BTreeSet};

use commerce_engine::audit::Check;
use commerce_engine::model::OrderStatus;

/// What a buyer last did to an order it placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Paid,
    Cancelled,
    /// Left to expire.
    Abandoned,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedOrder {
    pub order_id: u64,
    pub user_id: u64,
    /// (option id, quantity) per line.
    pub lines: Vec<(u64, u64)>,
    pub fate: Fate,
}

/// Successes as the buyers heard them. Each buyer keeps its own; they are merged at the end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub charged: BTreeMap<u64, u64>,
    pub paid: BTreeMap<u64, u64>,
    pub orders: Vec<PlacedOrder>,
    /// (coupon, user) for every successful issue.
    pub issued: Vec<(u64, u64)>,
    /// (coupon, user) for every successful payment with a coupon.
    pub coupons_used: Vec<(u64, u64)>,
}

impl Ledger {
    pub fn merge(&mut self, other: Ledger) {
        for (user, amount) in other.charged {
            *self.charged.entry(user).or_default() += amount;
        }
        for (user, amount) in other.paid {
            *self.paid.entry(user).or_default() += amount;
        }
        self.orders.extend(other.orders);
        self.issued.extend(other.issued);
        self.coupons_used.extend(other.coupons_used);
    }
}

/// The shop as observed at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub balances: BTreeMap<u64, u64>,
    /// Available stock per option.
    pub stock: BTreeMap<u64, u64>,
    /// Remaining quantity per coupon.
    pub coupons: BTreeMap<u64, u64>,
    /// Status of every order the buyers placed (end observation only).
    pub statuses: BTreeMap<u64, OrderStatus>,
}

fn check(name: &'static str, violations: Vec<String>, summary: String) -> Check {
    let ok = violations.is_empty();
    let detail = if ok {
        summary
    } else {
        violations
            .into_iter()
            .take(5)
            .collect::<Vec<_>>()
            .join("; ")
    };
    Check { name, ok, detail }
}

/// Checks the end observation against the start plus what the ledger says happened.
pub fn audit(ledger: &Ledger, start: &Observation, end: &Observation) -> Vec<Check> {
    vec![
        money(ledger, start, end),
        stock(ledger, start, end),
        orders(ledger, end),
        coupons(ledger, start, end),
    ]
}

fn money(ledger: &Ledger, start: &Observation, end: &Observation) -> Check {
    let mut violations = Vec::new();
    for (&user, &before) in &start.balances {
        let charged = ledger.charged.get(&user).copied().unwrap_or(0);
        let paid = ledger.paid.get(&user).copied().unwrap_or(0);
        let expected = (before + charged).checked_sub(paid);
        let actual = end.balances.get(&user).copied();
        if expected != actual {
            violations.push(format!(
                "user {user}: {before} + charged {charged} - paid {paid} != {actual:?}"
            ));
        }
    }
    let (charged, paid): (u64, u64) = (ledger.charged.values().sum(), ledger.paid.values().sum());
    check(
        "money",
        violations,
        format!("{charged} charged and {paid} paid, every balance accounted for"),
    )
}

fn stock(ledger: &Ledger, start: &Observation, end: &Observation) -> Check {
    let mut held: BTreeMap<u64, u64> = BTreeMap::new();
    for order in &ledger.orders {
        let status = end.statuses.get(&order.order_id);
        if matches!(status, Some(OrderStatus::Paid | OrderStatus::Pending)) {
            for &(option, quantity) in &order.lines {
                *held.entry(option).or_default() += quantity;
            }
        }
    }
    let mut violations = Vec::new();
    for (&option, &before) in &start.stock {
        let taken = held.get(&option).copied().unwrap_or(0);
        let expected = before.checked_sub(taken);
        let actual = end.stock.get(&option).copied();
        match expected {
            None => violations.push(format!(
                "option {option}: OVERSOLD, {taken} taken of {before}"
            )),
            Some(_) if expected != actual => violations.push(format!(
                "option {option}: {before} - {taken} held by orders != {actual:?} available"
            )),
            Some(_) => {}
        }
    }
    let sold: u64 = held.values().sum();
    check(
        "stock",
        violations,
        format!("{sold} units held by paid or pending orders, none oversold"),
    )
}

fn orders(ledger: &Ledger, end: &Observation) -> Check {
    let mut violations = Vec::new();
    let mut tally: BTreeMap<&'static str, u64> = BTreeMap::new();
    for order in &ledger.orders {
        let status = end.statuses.get(&order.order_id).copied();
        let consistent = matches!(
            (order.fate, status),
            (Fate::Paid, Some(OrderStatus::Paid))
                | (Fate::Cancelled, Some(OrderStatus::Cancelled))
                | (
                    Fate::Abandoned,
                    Some(OrderStatus::Expired | OrderStatus::Pending)
                )
        );
        if !consistent {
            violations.push(format!(
                "order {}: buyer left it {:?}, the shop says {status:?}",
                order.order_id, order.fate
            ));
        }
        let name = match status {
            Some(OrderStatus::Paid) => "paid",
            Some(OrderStatus::Cancelled) => "cancelled",
            Some(OrderStatus::Expired) => "expired",
            Some(OrderStatus::Pending) => "pending",
            None => "missing",
        };
        *tally.entry(name).or_default() += 1;
    }
    check(
        "orders",
        violations,
        format!("{} orders: {tally:?}", ledger.orders.len()),
    )
}

fn coupons(ledger: &Ledger, start: &Observation, end: &Observation) -> Check {
    let mut violations = Vec::new();
    let mut issued: BTreeMap<u64, u64> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for &(coupon, user) in &ledger.issued {
        *issued.entry(coupon).or_default() += 1;
        if !seen.insert((coupon, user)) {
            violations.push(format!("coupon {coupon} issued twice to user {user}"));
        }
    }
    let mut used = BTreeSet::new();
    for &(coupon, user) in &ledger.coupons_used {
        if !used.insert((coupon, user)) {
            violations.push(format!("coupon {coupon} of user {user} paid two orders"));
        }
    }
    for (&coupon, &before) in &start.coupons {
        let taken = issued.get(&coupon).copied().unwrap_or(0);
        let actual = end.coupons.get(&coupon).copied();
        if before.checked_sub(taken) != actual {
            violations.push(format!(
                "coupon {coupon}: {before} remaining - {taken} issued != {actual:?}"
            ));
        }
    }
    let summary = format!(
        "{} issued, {} used, none twice",
        ledger.issued.len(),
        ledger.coupons_used.len()
    );
    check("coupons", violations, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> (Ledger, Observation, Observation) {
        let ledger = Ledger {
            charged: BTreeMap::from([(1, 5_000)]),
            paid: BTreeMap::from([(1, 9_000)]),
            orders: vec![
                PlacedOrder {
                    order_id: 10,
                    user_id: 1,
                    lines: vec![(100, 2)],
                    fate: Fate::Paid,
                },
                PlacedOrder {
                    order_id: 11,
                    user_id: 2,
                    lines: vec![(100, 1)],
                    fate: Fate::Abandoned,
                },
                PlacedOrder {
                    order_id: 12,
                    user_id: 2,
                    lines: vec![(101, 4)],
                    fate: Fate::Cancelled,
                },
            ],
            issued: vec![(7, 1), (7, 2)],
            coupons_used: vec![(7, 1)],
        };
        let start = Observation {
            balances: BTreeMap::from([(1, 10_000), (2, 0)]),
            stock: BTreeMap::from([(100, 5), (101, 4)]),
            coupons: BTreeMap::from([(7, 10)]),
            statuses: BTreeMap::new(),
        };
        let end = Observation {
            balances: BTreeMap::from([(1, 6_000), (2, 0)]),
            stock: BTreeMap::from([(100, 3), (101, 4)]),
            coupons: BTreeMap::from([(7, 8)]),
            statuses: BTreeMap::from([
                (10, OrderStatus::Paid),
                (11, OrderStatus::Expired),
                (12, OrderStatus::Cancelled),
            ]),
        };
        (ledger, start, end)
    }

    fn failing(ledger: &Ledger, start: &Observation, end: &Observation) -> Vec<&'static str> {
        audit(ledger, start, end)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_consistent_run_passes() {
        let (ledger, start, end) = run();
        assert!(
            failing(&ledger, &start, &end).is_empty(),
            "{:#?}",
            audit(&ledger, &start, &end)
        );
    }

    #[test]
    fn invented_money_is_caught() {
        let (ledger, start, mut end) = run();
        *end.balances.get_mut(&1).unwrap() += 1;
        assert_eq!(failing(&ledger, &start, &end), ["money"]);
    }

    #[test]
    fn a_unit_that_reappears_or_is_oversold_is_caught() {
        let (ledger, start, mut end) = run();
        end.statuses.insert(11, OrderStatus::Pending);
        assert_eq!(
            failing(&ledger, &start, &end),
            ["stock"],
            "a pending order holds its unit"
        );
        let (mut ledger, start, end) = run();
        ledger.orders.push(PlacedOrder {
            order_id: 13,
            user_id: 1,
            lines: vec![(100, 9)],
            fate: Fate::Paid,
        });
        let mut end = end;
        end.statuses.insert(13, OrderStatus::Paid);
        let stock = audit(&ledger, &start, &end)
            .into_iter()
            .find(|c| c.name == "stock")
            .unwrap();
        assert!(
            !stock.ok && stock.detail.contains("OVERSOLD"),
            "{}",
            stock.detail
        );
    }

    #[test]
    fn an_order_in_the_wrong_state_is_caught() {
        let (ledger, start, mut end) = run();
        end.statuses.insert(12, OrderStatus::Expired);
        assert!(failing(&ledger, &start, &end).contains(&"orders"));
    }

    #[test]
    fn double_issues_and_double_uses_are_caught() {
        let (mut ledger, start, mut end) = run();
        ledger.issued.push((7, 1));
        *end.coupons.get_mut(&7).unwrap() -= 1;
        assert_eq!(failing(&ledger, &start, &end), ["coupons"]);
        let (mut ledger, start, end) = run();
        ledger.coupons_used.push((7, 1));
        assert_eq!(failing(&ledger, &start, &end), ["coupons"]);
    }
}
