//! The concurrent-buyer simulation (docs/spec.md §7): a seeded, invariant-checking harness.
//! Thousands of buyers (`buyer.rs`) shop at once, in this process (`Engine`) or against a
//! running server (`HttpShop`); the shop is observed before and after, and the difference must
//! be exactly what the buyers' ledger says (`ledger.rs`), cross-checked with the engine's own
//! audit. The report (`report.rs`) gives ops/s, latency percentiles and outcome counts.

pub mod buyer;
pub mod ledger;
pub mod report;
pub mod shop;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use buyer::{Buyer, Catalog, Until};
use commerce_engine::audit::Check;
use commerce_engine::clock::Clock;
use commerce_engine::config::Limits;
use commerce_engine::engine::{Engine, EngineConfig};
use commerce_engine::model::{Discount, OrderStatus};
use commerce_engine::seed::{Seed, SeedCoupon, SeedOption, SeedProduct, SeedUsers};
use ledger::{Ledger, Observation};
use report::{Report, RunInfo, Samples};
use shop::{HttpShop, Shop};

/// Points each embedded user starts with in a flash sale: enough for a few orders.
const INITIAL_BALANCE: u64 = 50_000;
/// Points each embedded user starts with in the steady scenario: never short.
const AMPLE_BALANCE: u64 = 100_000_000;
/// Stock of every option in the steady scenario: never sold out in a run.
const AMPLE_STOCK: u64 = 1_000_000_000;

/// What the buyers face.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Scarce stock and coupons, small balances, every fourth product limited per user: buyers
    /// compete, and most attempts are refused. Browsing, charging, coupon races, orders paid,
    /// cancelled or abandoned to expire.
    #[default]
    FlashSale,
    /// Ample stock and balances, no limits: buyers order and pay (nineteen in twenty; the
    /// rest cancel), so the run measures business throughput, not refusals.
    Steady,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::FlashSale => "flash-sale",
            Scenario::Steady => "steady",
        }
    }
}
const CATEGORIES: [&str; 5] = ["electronics", "fashion", "food", "home", "sports"];

#[derive(Clone, Debug)]
pub struct Options {
    pub scenario: Scenario,
    pub buyers: usize,
    pub duration: Duration,
    pub seed: Option<u64>,
    /// A running server; `None` runs an engine in this process.
    pub target: Option<String>,
    /// Lets the HTTP mode cross-check with `GET /admin/audit`.
    pub admin_token: Option<String>,
    /// The target's `auth.jwt_secret` when it runs `auth.mode = "jwt"`.
    pub jwt_secret: Option<String>,
    pub users: u64,
    pub products: u64,
    pub coupons: u64,
    /// Order expiry of the embedded engine.
    pub expiry: Duration,
    /// Stop each buyer after this many operations instead of at the deadline (tests).
    pub operations_per_buyer: Option<u64>,
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scenario: Scenario::FlashSale,
            buyers: 1_000,
            duration: Duration::from_secs(10),
            seed: None,
            target: None,
            admin_token: None,
            jwt_secret: None,
            users: 1_000,
            products: 100,
            coupons: 10,
            expiry: Duration::from_secs(2),
            operations_per_buyer: None,
            progress: false,
        }
    }
}

impl Options {
    fn rerun(&self, seed: u64) -> String {
        let mut line = format!(
            "cargo run --release --bin simulate -- --scenario {} --seed {seed} --buyers {} --duration {} --users {} --products {} --coupons {} --expiry {}",
            self.scenario.name(),
            self.buyers,
            humantime::format_duration(self.duration),
            self.users,
            self.products,
            self.coupons,
            humantime::format_duration(self.expiry)
        );
        if let Some(target) = &self.target {
            line.push_str(&format!(" --target {target}"));
        }
        line
    }
}

/// Runs the whole simulation and reports; `report.ok` is false if any invariant failed.
pub async fn run(options: &Options) -> Result<Report, String> {
    let seed = options.seed.unwrap_or_else(rand::random);
    match &options.target {
        None => {
            let state = embedded_catalog(options, seed).into_state(&Limits::default())?;
            let config = EngineConfig {
                order_expiry: options.expiry,
                ..EngineConfig::default()
            };
            let engine = Engine::start(config, Clock::system(), &state)
                .await
                .map_err(|error| error.to_string())?;
            let report = simulate(engine.clone(), options, seed, "embedded").await;
            engine.stop().await;
            report
        }
        Some(target) => {
            simulate(
                HttpShop::new(
                    target,
                    options.admin_token.clone(),
                    options.jwt_secret.as_deref(),
                ),
                options,
                seed,
                "http",
            )
            .await
        }
    }
}

/// The embedded engine's catalog, drawn from the seed: scarce stock and coupons, so buyers
/// really compete.
pub fn embedded_catalog(options: &Options, seed: u64) -> Seed {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut option_id = 0;
    let products = (1..=options.products)
        .map(|id| SeedProduct {
            id,
            name: format!("Product {id}"),
            category: CATEGORIES[rng.random_range(0..CATEGORIES.len())].to_string(),
            price: rng.random_range(10..=1_000) * 100,
            options: (0..rng.random_range(1..=3))
                .map(|index| {
                    option_id += 1;
                    SeedOption {
                        id: option_id,
                        name: ["S", "M", "L"][index].into(),
                        stock: match options.scenario {
                            Scenario::FlashSale => rng.random_range(50..=500),
                            Scenario::Steady => AMPLE_STOCK,
                        },
                    }
                })
                .collect(),
            // Every fourth product is limited, so buyers also meet PURCHASE_LIMIT_EXCEEDED.
            purchase_limit: (options.scenario == Scenario::FlashSale && id % 4 == 0).then_some(5),
        })
        .collect();
    let coupons = (1..=options.coupons)
        .map(|id| SeedCoupon {
            id,
            name: format!("Coupon {id}"),
            discount: match id % 2 {
                0 => Discount::Fixed {
                    amount: rng.random_range(1..=5) * 1_000,
                },
                _ => Discount::Percent {
                    percent: rng.random_range(5..=30),
                },
            },
            quantity: (options.users / 20).max(1),
            expires_at: None,
        })
        .collect();
    Seed {
        users: SeedUsers {
            count: options.users,
            initial_balance: match options.scenario {
                Scenario::FlashSale => INITIAL_BALANCE,
                Scenario::Steady => AMPLE_BALANCE,
            },
        },
        products,
        coupons,
    }
}

async fn discover<S: Shop>(shop: &S, options: &Options) -> Result<Catalog, String> {
    let products = shop
        .catalog()
        .await
        .map_err(|code| format!("cannot list products: {code}"))?;
    let categories: BTreeSet<String> = products.iter().map(|p| p.category.clone()).collect();
    let mut coupons = Vec::new();
    for coupon_id in 1..=options.coupons {
        if shop.coupon(coupon_id).await.is_ok() {
            coupons.push(coupon_id);
        }
    }
    Ok(Catalog {
        products: products
            .iter()
            .map(|p| (p.id, p.options.iter().map(|o| o.id).collect()))
            .collect(),
        categories: categories.into_iter().collect(),
        coupons,
        users: options.users,
    })
}

/// Observes the shop once buyers have stopped. Expiry timers still run then, so stock is read
/// between two reads of the order statuses, and again until both agree: the stock seen then
/// belongs to exactly those statuses.
async fn observe<S: Shop>(
    shop: &S,
    catalog: &Catalog,
    ledger: &Ledger,
) -> Result<Observation, String> {
    let failed =
        |what: &str, code: std::borrow::Cow<'static, str>| format!("cannot observe {what}: {code}");
    let mut observation = Observation::default();
    for user_id in 1..=catalog.users {
        let balance = shop
            .balance(user_id)
            .await
            .map_err(|code| failed("a balance", code))?;
        observation.balances.insert(user_id, balance);
    }
    for &coupon_id in &catalog.coupons {
        let coupon = shop
            .coupon(coupon_id)
            .await
            .map_err(|code| failed("a coupon", code))?;
        observation
            .coupons
            .insert(coupon_id, coupon.remaining_quantity);
    }
    let mut statuses = order_statuses(shop, ledger).await?;
    loop {
        observation.stock.clear();
        for product in shop.catalog().await.map_err(|code| failed("stock", code))? {
            observation.stock.extend(
                product
                    .options
                    .iter()
                    .map(|option| (option.id, option.stock)),
            );
        }
        let after = order_statuses(shop, ledger).await?;
        if after == statuses {
            observation.statuses = after;
            return Ok(observation);
        }
        statuses = after;
    }
}

async fn order_statuses<S: Shop>(
    shop: &S,
    ledger: &Ledger,
) -> Result<BTreeMap<u64, OrderStatus>, String> {
    let mut statuses = BTreeMap::new();
    for order in &ledger.orders {
        let status = shop
            .order_status(order.order_id, order.user_id)
            .await
            .map_err(|code| format!("cannot observe an order: {code}"))?;
        statuses.insert(order.order_id, status);
    }
    Ok(statuses)
}

fn progress_bar(options: &Options) -> ProgressBar {
    if !options.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(options.duration.as_millis() as u64);
    let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}")
        .expect("a valid template");
    bar.set_style(style);
    bar
}

/// Runs the buyers against any `Shop` (the two of `run`, or a test's own).
pub async fn simulate<S: Shop>(
    shop: S,
    options: &Options,
    seed: u64,
    mode: &str,
) -> Result<Report, String> {
    eprintln!(
        "simulation seed {seed} ({mode}); rerun with: {}",
        options.rerun(seed)
    );
    let catalog = Arc::new(discover(&shop, options).await?);
    let start = observe(&shop, &catalog, &Ledger::default()).await?;
    let counter = Arc::new(AtomicU64::new(0));
    let until = Until {
        deadline: Instant::now() + options.duration,
        operations_per_buyer: options.operations_per_buyer,
    };
    let started = Instant::now();
    let buyers: Vec<_> = (0..options.buyers as u64)
        .map(|index| {
            let buyer = Buyer::new(shop.clone(), index, seed, catalog.clone(), counter.clone())
                .in_scenario(options.scenario);
            tokio::spawn(buyer.shop_until(until))
        })
        .collect();
    let bar = progress_bar(options);
    let (mut ledger, mut samples) = (Ledger::default(), Samples::default());
    for buyer in buyers {
        while !buyer.is_finished() {
            bar.set_position(started.elapsed().as_millis() as u64);
            bar.set_message(format!("{} operations", counter.load(Ordering::Relaxed)));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (buyer_ledger, buyer_samples) = buyer
            .await
            .map_err(|error| format!("a buyer panicked: {error}"))?;
        ledger.merge(buyer_ledger);
        samples.merge(buyer_samples);
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let end = observe(&shop, &catalog, &ledger).await?;
    let mut checks = ledger::audit(&ledger, &start, &end);
    checks.extend(engine_check(&shop).await);
    let run = RunInfo {
        seed,
        scenario: options.scenario.name(),
        mode: mode.to_string(),
        buyers: options.buyers,
        rerun: options.rerun(seed),
    };
    Ok(Report::new(run, samples, elapsed, checks))
}

/// The engine's own audit as one more check, when the shop can ask for it.
async fn engine_check<S: Shop>(shop: &S) -> Option<Check> {
    let report = shop.engine_audit().await?;
    Some(match report {
        Ok(report) if report.ok => Check {
            name: "engine_audit",
            ok: true,
            detail: format!("{} checks pass", report.checks.len()),
        },
        Ok(report) => Check {
            name: "engine_audit",
            ok: false,
            detail: report.failures(),
        },
        Err(code) => Check {
            name: "engine_audit",
            ok: false,
            detail: format!("the audit could not run: {code}"),
        },
    })
}
