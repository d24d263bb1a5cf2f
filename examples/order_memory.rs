//! Bytes of memory per PENDING order (BENCHMARKS.md, "Steady state"): an in-memory engine with
//! 10,000 users places `orders` one-line orders that stay PENDING, and the process's resident
//! set is read before and after. Everything an order costs is counted: the order in its
//! buyer's actor, the reservation in its product's, the supervisor's deadline and the order →
//! buyer map.
//!
//! `cargo run --release --example order_memory -- [orders]` (default 200,000).

use std::time::Duration;

use commerce_engine::clock::Clock;
use commerce_engine::config::Limits;
use commerce_engine::engine::OrderLine;
use commerce_engine::seed::{Seed, SeedOption, SeedProduct, SeedUsers};
use commerce_engine::{Engine, EngineConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USERS: u64 = 10_000;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::main]
async fn main() {
    let orders: u64 = std::env::args()
        .nth(1)
        .map_or(200_000, |n| n.parse().unwrap());
    let limits = Limits {
        max_pending_orders_per_user: orders,
        ..Limits::default()
    };
    let seed = Seed {
        users: SeedUsers {
            count: USERS,
            initial_balance: 0,
        },
        products: (1..=100)
            .map(|id| SeedProduct {
                id,
                name: format!("Product {id} with a name of plausible length"),
                category: "bench".into(),
                price: 1_000,
                options: vec![SeedOption {
                    id,
                    name: "Only".into(),
                    stock: 1_000_000_000,
                }],
                purchase_limit: None,
            })
            .collect(),
        coupons: Vec::new(),
    };
    let config = EngineConfig {
        limits,
        order_expiry: Duration::from_secs(86_400),
        ..EngineConfig::default()
    };
    let engine = Engine::start(config, Clock::system(), &seed.into_state(&limits).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_bytes();
    for n in 0..orders {
        let line = OrderLine {
            product_id: 1 + n % 100,
            option_id: None,
            quantity: 1,
        };
        engine.place_order(1 + n % USERS, vec![line]).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss_bytes();
    let watched = engine.watched_deadlines().await.unwrap();
    println!(
        "{orders} PENDING one-line orders ({watched} deadlines watched): RSS {} -> {} MiB, {:.0} bytes per order",
        before >> 20,
        after >> 20,
        (after - before) as f64 / orders as f64
    );
    engine.stop().await;
}
