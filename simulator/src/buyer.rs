//! One simulated buyer: a seeded mix of browsing, charging, racing for coupons, ordering one
//! or several lines, paying (with a held coupon or not, charging and retrying when short),
//! cancelling, and abandoning orders to expire. Every success is written to the buyer's ledger.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Scenario;
use super::ledger::{Fate, Ledger, PlacedOrder};
use super::report::{Kind, Samples};
use super::shop::{Outcome, Shop};
use commerce_engine::engine::OrderLine;

/// What buyers know of the shop.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// (product id, option ids) of every product.
    pub products: Vec<(u64, Vec<u64>)>,
    pub categories: Vec<String>,
    pub coupons: Vec<u64>,
    /// Buyers act as users 1..=users.
    pub users: u64,
}

/// When buyers stop: at a deadline, or after a number of operations each (for tests).
#[derive(Clone, Copy, Debug)]
pub struct Until {
    pub deadline: Instant,
    pub operations_per_buyer: Option<u64>,
}

pub struct Buyer<S> {
    shop: S,
    user_id: u64,
    catalog: Arc<Catalog>,
    rng: StdRng,
    held_coupons: Vec<u64>,
    ledger: Ledger,
    samples: Samples,
    done: u64,
    counter: Arc<AtomicU64>,
    scenario: Scenario,
}

impl<S: Shop> Buyer<S> {
    pub fn new(
        shop: S,
        index: u64,
        seed: u64,
        catalog: Arc<Catalog>,
        counter: Arc<AtomicU64>,
    ) -> Buyer<S> {
        Buyer {
            shop,
            user_id: 1 + index % catalog.users.max(1),
            catalog,
            // Each buyer has its own stream, so the mix does not depend on scheduling.
            rng: StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            held_coupons: Vec::new(),
            ledger: Ledger::default(),
            samples: Samples::default(),
            done: 0,
            counter,
            scenario: Scenario::FlashSale,
        }
    }

    pub fn in_scenario(mut self, scenario: Scenario) -> Buyer<S> {
        self.scenario = scenario;
        self
    }

    pub async fn shop_until(mut self, until: Until) -> (Ledger, Samples) {
        while Instant::now() < until.deadline
            && until
                .operations_per_buyer
                .is_none_or(|limit| self.done < limit)
        {
            if self.scenario == Scenario::Steady {
                self.order_and_decide().await;
                continue;
            }
            match self.rng.random_range(0..100) {
                0..20 => self.browse().await,
                20..30 => {
                    let amount = self.rng.random_range(1..=50) * 1_000;
                    let _ = self.charge(amount).await;
                }
                30..45 => self.race_for_coupon().await,
                _ => self.order_and_decide().await,
            }
        }
        (self.ledger, self.samples)
    }

    /// Runs one operation, recording its latency and outcome.
    async fn timed<T>(
        &mut self,
        kind: Kind,
        operation: impl Future<Output = Outcome<T>>,
    ) -> Outcome<T> {
        let started = Instant::now();
        let outcome = operation.await;
        self.samples.record(
            kind,
            started.elapsed(),
            outcome.as_ref().err().map(|code| code.as_ref()),
        );
        self.done += 1;
        self.counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    async fn browse(&mut self) {
        let category = match self.rng.random_bool(0.7) {
            true if !self.catalog.categories.is_empty() => {
                let index = self.rng.random_range(0..self.catalog.categories.len());
                Some(self.catalog.categories[index].clone())
            }
            _ => None,
        };
        let in_stock = self.rng.random_bool(0.5);
        let shop = self.shop.clone();
        let _ = self
            .timed(Kind::Browse, shop.browse(category, in_stock))
            .await;
    }

    async fn charge(&mut self, amount: u64) -> Outcome<u64> {
        let (shop, user_id) = (self.shop.clone(), self.user_id);
        let charged = self.timed(Kind::Charge, shop.charge(user_id, amount)).await;
        if charged.is_ok() {
            *self.ledger.charged.entry(user_id).or_default() += amount;
        }
        charged
    }

    async fn race_for_coupon(&mut self) {
        if self.catalog.coupons.is_empty() {
            return;
        }
        let coupon_id = self.catalog.coupons[self.rng.random_range(0..self.catalog.coupons.len())];
        let (shop, user_id) = (self.shop.clone(), self.user_id);
        if self
            .timed(Kind::IssueCoupon, shop.issue_coupon(coupon_id, user_id))
            .await
            .is_ok()
        {
            self.ledger.issued.push((coupon_id, user_id));
            self.held_coupons.push(coupon_id);
        }
    }

    fn pick_lines(&mut self) -> Vec<OrderLine> {
        let products = &self.catalog.products;
        let wanted = self.rng.random_range(1..=3.min(products.len()));
        let mut lines: Vec<OrderLine> = Vec::with_capacity(wanted);
        while lines.len() < wanted {
            let (product_id, options) = &products[self.rng.random_range(0..products.len())];
            if lines.iter().any(|line| line.product_id == *product_id) {
                continue;
            }
            let option_id = options[self.rng.random_range(0..options.len())];
            let quantity = self.rng.random_range(1..=3);
            lines.push(OrderLine {
                product_id: *product_id,
                option_id: Some(option_id),
                quantity,
            });
        }
        lines
    }

    async fn order_and_decide(&mut self) {
        if self.catalog.products.is_empty() {
            return;
        }
        let lines = self.pick_lines();
        let (shop, user_id) = (self.shop.clone(), self.user_id);
        let Ok((order_id, total)) = self
            .timed(Kind::Order, shop.place_order(user_id, lines.clone()))
            .await
        else {
            return;
        };
        let stock_lines = lines
            .iter()
            .map(|line| (line.option_id.unwrap_or(0), line.quantity))
            .collect();
        self.ledger.orders.push(PlacedOrder {
            order_id,
            user_id,
            lines: stock_lines,
            fate: Fate::Abandoned,
        });
        let decision = self.rng.random_range(0..100);
        match (self.scenario, decision) {
            (Scenario::FlashSale, 0..65) | (Scenario::Steady, 0..95) => {
                self.pay(order_id, total).await
            }
            (Scenario::FlashSale, 65..80) | (Scenario::Steady, _) => self.cancel(order_id).await,
            _ => {} // abandoned: left to expire
        }
    }

    async fn cancel(&mut self, order_id: u64) {
        let (shop, user_id) = (self.shop.clone(), self.user_id);
        if self
            .timed(Kind::Cancel, shop.cancel(order_id, user_id))
            .await
            .is_ok()
        {
            self.set_fate(Fate::Cancelled);
        }
    }

    /// Pays, with a held coupon half the time; short of points, charges the total and retries.
    async fn pay(&mut self, order_id: u64, total: u64) {
        let coupon_id = match self.rng.random_bool(0.5) {
            true => self.held_coupons.pop(),
            false => None,
        };
        let (shop, user_id) = (self.shop.clone(), self.user_id);
        let mut paid = self
            .timed(Kind::Pay, shop.pay(order_id, user_id, coupon_id))
            .await;
        if paid
            .as_ref()
            .is_err_and(|code| code == "INSUFFICIENT_BALANCE")
            && self.charge(total.clamp(1, 1_000_000)).await.is_ok()
        {
            paid = self
                .timed(Kind::Pay, shop.pay(order_id, user_id, coupon_id))
                .await;
        }
        if let Ok(amount) = paid {
            *self.ledger.paid.entry(user_id).or_default() += amount;
            if let Some(coupon_id) = coupon_id {
                self.ledger.coupons_used.push((coupon_id, user_id));
            }
            self.set_fate(Fate::Paid);
        }
    }

    fn set_fate(&mut self, fate: Fate) {
        if let Some(order) = self.ledger.orders.last_mut() {
            order.fate = fate;
        }
    }
}
