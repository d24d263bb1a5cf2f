//! Recovery benchmark: writes a journal of about N records (order-and-pay cycles and charges
//! from 64 tasks, `journal.fsync = off` to write it quickly) after the seed's snapshot, then
//! measures how long recovery takes to replay it (read, check, decode, apply), and the disk
//! bytes per record.
//!
//! `cargo run --release --example recovery_bench -- 1000000`

use std::time::{Duration, Instant};

use commerce_engine::app::{self, Storage};
use commerce_engine::clock::Clock;
use commerce_engine::config::Limits;
use commerce_engine::engine::OrderLine;
use commerce_engine::journal::{self, FsyncPolicy, JournalOptions};
use commerce_engine::seed::Seed;
use commerce_engine::{Engine, EngineConfig};

const TASKS: u64 = 64;

fn storage(dir: &std::path::Path) -> Storage {
    Storage {
        journal: JournalOptions {
            dir: dir.to_path_buf(),
            fsync: FsyncPolicy::Off,
            fsync_interval: Duration::from_secs(1),
            segment_bytes: 64 << 20,
            keep: 3,
        },
        ignore_damage: false,
        faults: None,
    }
}

/// One task's share: each cycle places an order (2 records), pays it (2) and charges (1).
async fn work(engine: Engine, task: u64, cycles: u64) {
    for cycle in 0..cycles {
        let user_id = 1 + (task + cycle * TASKS) % 100_000;
        let line = OrderLine {
            product_id: 1 + cycle % 10,
            option_id: None,
            quantity: 1,
        };
        let order = engine.place_order(user_id, vec![line]).await.unwrap();
        engine.pay(order.order_id, user_id, None).await.unwrap();
        engine.charge(user_id, 10_000).await.unwrap();
    }
}

#[tokio::main]
async fn main() {
    let records: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |n| n.parse().expect("a record count"));
    let dir = tempfile::tempdir().unwrap();
    let seed = Seed::load(std::path::Path::new("config/bench-seed.toml"))
        .and_then(|seed| seed.into_state(&Limits::default()))
        .unwrap();
    let engine = app::open(
        EngineConfig::default(),
        storage(dir.path()),
        Clock::system(),
        move || Ok(seed),
    )
    .await
    .unwrap();
    let cycles = records / 5 / TASKS;
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| tokio::spawn(work(engine.clone(), task, cycles)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let written = engine.journal().unwrap().appended();
    println!("wrote {written} records in {:?}", started.elapsed());
    engine.stop().await;

    let bytes: u64 = journal::segment::list(dir.path())
        .unwrap()
        .iter()
        .map(|segment| std::fs::metadata(&segment.path).unwrap().len())
        .sum();
    let started = Instant::now();
    let recovered =
        journal::recover(dir.path(), false, || Err("a snapshot exists".into())).unwrap();
    let took = started.elapsed();
    println!(
        "recovered {} records in {took:?}: {:.2} s per million records",
        recovered.position,
        took.as_secs_f64() * 1e6 / recovered.position as f64
    );
    println!(
        "journal: {bytes} bytes on disk (segments are preallocated), {:.1} bytes per record written",
        engine_bytes(dir.path()) as f64 / recovered.position as f64
    );
}

/// The bytes the records take: each segment up to its last record.
fn engine_bytes(dir: &std::path::Path) -> u64 {
    journal::segment::list(dir)
        .unwrap()
        .iter()
        .map(|listed| {
            let bytes = std::fs::read(&listed.path).unwrap();
            journal::segment::scan(&bytes, listed.first).valid_len as u64
                - journal::segment::HEADER_LEN as u64
        })
        .sum()
}
