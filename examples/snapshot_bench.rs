//! Snapshot benchmark: builds a state of N users (products N/100, coupons N/1000, about N/2
//! orders in every state) through the engine's own API, journal on (`fsync = always`), then
//! measures the snapshot's write time and file size, the latency of charges (each waits for
//! its fsync) from 32 tasks without snapshots and with snapshots taken back to back (the
//! stall), and the restore time (snapshot + journal replay + actors started).
//!
//! `cargo run --release --example snapshot_bench -- 100000`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use commerce_engine::app::{self, Storage};
use commerce_engine::clock::Clock;
use commerce_engine::config::Limits;
use commerce_engine::domain::state::EngineState;
use commerce_engine::engine::OrderLine;
use commerce_engine::journal::{FsyncPolicy, JournalOptions};
use commerce_engine::model::Discount;
use commerce_engine::seed::{Seed, SeedCoupon, SeedOption, SeedProduct, SeedUsers};
use commerce_engine::{Engine, EngineConfig};
use hdrhistogram::Histogram;

/// The server's allocator, so the numbers are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn catalog(users: u64) -> Seed {
    let products = (1..=(users / 100).max(1))
        .map(|id| SeedProduct {
            id,
            name: format!("Product {id}"),
            category: ["food", "home", "fashion", "sports"][(id % 4) as usize].into(),
            price: 1_000 + id % 50 * 100,
            options: vec![
                SeedOption {
                    id: id * 2 - 1,
                    name: "A".into(),
                    stock: 1_000,
                },
                SeedOption {
                    id: id * 2,
                    name: "B".into(),
                    stock: 1_000,
                },
            ],
            purchase_limit: None,
        })
        .collect();
    let coupons = (1..=(users / 1_000).max(1))
        .map(|id| SeedCoupon {
            id,
            name: format!("Coupon {id}"),
            discount: if id % 2 == 0 {
                Discount::Fixed { amount: 500 }
            } else {
                Discount::Percent { percent: 10 }
            },
            quantity: 1_000,
            expires_at: None,
        })
        .collect();
    Seed {
        users: SeedUsers {
            count: users,
            initial_balance: 1_000_000,
        },
        products,
        coupons,
    }
}

/// Half the users place an order: 50% are paid (a fifth of them with a coupon), 20%
/// cancelled, 30% left pending. A tenth of all users hold a coupon.
async fn populate(engine: &Engine, users: u64) {
    let products = (users / 100).max(1);
    let coupons = (users / 1_000).max(1);
    let workers: Vec<_> = (0..64u64)
        .map(|worker| {
            let engine = engine.clone();
            tokio::spawn(async move {
                for user_id in (1..=users).filter(|id| id % 64 == worker) {
                    let coupon_id = 1 + user_id % coupons;
                    let holds_coupon =
                        user_id % 10 == 0 && engine.issue_coupon(coupon_id, user_id).await.is_ok();
                    if user_id % 2 == 1 {
                        continue;
                    }
                    let product_id = 1 + user_id % products;
                    let line = OrderLine {
                        product_id,
                        option_id: Some(product_id * 2 - user_id % 2),
                        quantity: 1,
                    };
                    let Ok(order) = engine.place_order(user_id, vec![line]).await else {
                        continue;
                    };
                    match user_id % 10 {
                        0 if holds_coupon => {
                            drop(engine.pay(order.order_id, user_id, Some(coupon_id)).await)
                        }
                        0..=4 => drop(engine.pay(order.order_id, user_id, None).await),
                        5 | 6 => drop(engine.cancel(order.order_id, user_id).await),
                        _ => {}
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
}

async fn open(dir: &std::path::Path, state: EngineState) -> Engine {
    let storage = Storage {
        journal: JournalOptions {
            dir: dir.to_path_buf(),
            fsync: FsyncPolicy::Always,
            fsync_interval: Duration::from_secs(1),
            segment_bytes: 64 << 20,
            keep: 3,
        },
        ignore_damage: false,
        faults: None,
    };
    app::open(
        EngineConfig::default(),
        storage,
        Clock::system(),
        move || Ok(state),
    )
    .await
    .unwrap()
}

/// Charges of 1 point from 32 tasks until `stop`; returns the latency histogram in
/// microseconds.
async fn load(engine: Engine, users: u64, stop: Arc<AtomicBool>) -> Histogram<u64> {
    let tasks: Vec<_> = (0..32u64)
        .map(|task| {
            let (engine, stop) = (engine.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Histogram::<u64>::new(3).unwrap();
                let mut user_id = 1 + task;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    engine.charge(user_id, 1).await.unwrap();
                    latencies
                        .record(started.elapsed().as_micros() as u64)
                        .unwrap();
                    user_id = 1 + (user_id + 32) % users;
                }
                latencies
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new(3).unwrap();
    for task in tasks {
        all.add(task.await.unwrap()).unwrap();
    }
    all
}

/// Latency of charges for `seconds`, with snapshots taken back to back or not at all; and
/// how long each snapshot took.
async fn latency_under(
    engine: &Engine,
    users: u64,
    snapshots: bool,
    seconds: u64,
) -> (Histogram<u64>, Vec<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load(engine.clone(), users, stop.clone()));
    let mut took = Vec::new();
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        match snapshots {
            true => took.push(engine.snapshot().await.unwrap().took_ms),
            false => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    stop.store(true, Ordering::Relaxed);
    (load.await.unwrap(), took)
}

#[tokio::main]
async fn main() {
    let users: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |n| n.parse().expect("a user count"));
    let dir = tempfile::tempdir().unwrap();
    let state = catalog(users).into_state(&Limits::default()).unwrap();
    let started = Instant::now();
    let engine = open(dir.path(), state).await;
    println!(
        "users {users}: engine start from the seed (with its first snapshot) {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    populate(&engine, users).await;
    println!("populated in {:?}", started.elapsed());

    let info = engine.snapshot().await.unwrap();
    println!(
        "snapshot: {} entities, {:.1} MiB, {} ms (check + encode + write + fsync, off the request path)",
        info.entities,
        info.bytes as f64 / 1_048_576.0,
        info.took_ms
    );
    let (quiet, _) = latency_under(&engine, users, false, 10).await;
    let (busy, took) = latency_under(&engine, users, true, 10).await;
    let us = |h: &Histogram<u64>, q| h.value_at_quantile(q);
    for (name, histogram) in [("without snapshots", &quiet), ("with snapshots   ", &busy)] {
        println!(
            "charge latency {name}: p50 {} us, p99 {} us, p99.9 {} us, max {} us ({} charges, {:.0}/s)",
            us(histogram, 0.5),
            us(histogram, 0.99),
            us(histogram, 0.999),
            histogram.max(),
            histogram.len(),
            histogram.len() as f64 / 10.0
        );
    }
    println!("snapshots taken back to back, ms each: {took:?}");
    engine.stop().await;

    let started = Instant::now();
    let restored = open(dir.path(), EngineState::default()).await;
    println!(
        "restore: {:?} (newest snapshot + journal after it + actors started)",
        started.elapsed()
    );
    restored.stop().await;
}
