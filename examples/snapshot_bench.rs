//! Snapshot benchmark: builds a state of N users (products N/100, coupons N/1000, about N/2
//! orders in every state) through the engine's own API, then measures the snapshot's write
//! time, file size, restore time (decode + start), the pause it imposes (the gate closed while
//! actors are read) and request latency while snapshots run.
//!
//! `cargo run --release --example snapshot_bench -- 100000`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use commerce_engine::clock::Clock;
use commerce_engine::config::Limits;
use commerce_engine::engine::OrderLine;
use commerce_engine::model::Discount;
use commerce_engine::seed::{Seed, SeedCoupon, SeedOption, SeedProduct, SeedUsers};
use commerce_engine::snapshot::{self, SnapshotStore};
use commerce_engine::{Engine, EngineConfig};
use hdrhistogram::Histogram;

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

fn config(store: Option<Arc<SnapshotStore>>) -> EngineConfig {
    EngineConfig {
        snapshots: store,
        ..EngineConfig::default()
    }
}

/// Charges from 32 tasks until `stop`; returns the latency histogram in microseconds.
async fn load(engine: Engine, users: u64, stop: Arc<AtomicBool>) -> Histogram<u64> {
    let tasks: Vec<_> = (0..32u64)
        .map(|task| {
            let (engine, stop) = (engine.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Histogram::<u64>::new(3).unwrap();
                let mut user_id = 1 + task;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    engine.balance(user_id).await.unwrap();
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

async fn latency_under(
    engine: &Engine,
    users: u64,
    snapshots: usize,
) -> (Histogram<u64>, Vec<u128>) {
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load(engine.clone(), users, stop.clone()));
    let mut pauses = Vec::new();
    for _ in 0..snapshots {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        engine.read_state().await.unwrap(); // exactly the gated part of a snapshot
        pauses.push(started.elapsed().as_millis());
        if snapshots > 0 {
            engine.snapshot().await.unwrap();
        }
    }
    if snapshots == 0 {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    (load.await.unwrap(), pauses)
}

#[tokio::main]
async fn main() {
    let users: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |n| n.parse().expect("a user count"));
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SnapshotStore::new(dir.path().to_path_buf(), 3, 1));
    let state = catalog(users).into_state(&Limits::default()).unwrap();
    let started = Instant::now();
    let engine = Engine::start(config(Some(store)), Clock::system(), state)
        .await
        .unwrap();
    println!(
        "users {users}: engine start from the seed {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    populate(&engine, users).await;
    println!("populated in {:?}", started.elapsed());

    let info = engine.snapshot().await.unwrap();
    println!(
        "snapshot: {} entities, {:.1} MiB, {} ms write (read + encode + fsync)",
        info.entities,
        info.bytes as f64 / 1_048_576.0,
        info.took_ms
    );
    let started = Instant::now();
    let loaded = snapshot::read_newest(dir.path(), false).unwrap().unwrap();
    let decoded = started.elapsed();
    let restored = Engine::start(config(None), Clock::system(), loaded.state)
        .await
        .unwrap();
    println!(
        "restore: {:?} read + check + decode, {:?} total with actors started",
        decoded,
        started.elapsed()
    );
    restored.stop().await;

    let (quiet, _) = latency_under(&engine, users, 0).await;
    let (busy, pauses) = latency_under(&engine, users, 5).await;
    let us = |h: &Histogram<u64>, q| h.value_at_quantile(q);
    println!(
        "GET points latency without snapshots: p50 {} us, p99 {} us, max {} us ({} requests)",
        us(&quiet, 0.5),
        us(&quiet, 0.99),
        quiet.max(),
        quiet.len()
    );
    println!(
        "GET points latency with snapshots:    p50 {} us, p99 {} us, max {} us ({} requests)",
        us(&busy, 0.5),
        us(&busy, 0.99),
        busy.max(),
        busy.len()
    );
    println!("pause (gate closed while every actor is read), ms: {pauses:?}");
}
