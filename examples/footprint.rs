//! Memory and start-up on a large catalog: 100,000 users, 10,000 products (2 options each) and
//! 1,000 coupons, written as a seed file and loaded the way the server loads it. Reports the
//! start-up time (seed parse + every actor started) and the idle RSS per entity.
//!
//! `cargo run --release --example footprint`

use std::fmt::Write;
use std::time::{Duration, Instant};

use commerce_engine::clock::Clock;
use commerce_engine::config::Limits;
use commerce_engine::seed::Seed;
use commerce_engine::{Engine, EngineConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USERS: u64 = 100_000;
const PRODUCTS: u64 = 10_000;
const COUPONS: u64 = 1_000;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: 0 kB");
    line.split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

fn seed_toml() -> String {
    let mut toml = format!("[users]\ncount = {USERS}\ninitial_balance = 100000\n");
    for id in 1..=PRODUCTS {
        let _ = write!(
            toml,
            "\n[[products]]\nid = {id}\nname = \"Product {id}\"\ncategory = \"c{}\"\nprice = {}\noptions = [{{ id = {}, name = \"A\", stock = 100 }}, {{ id = {}, name = \"B\", stock = 100 }}]\n",
            id % 10,
            1_000 + id,
            id * 2 - 1,
            id * 2
        );
    }
    for id in 1..=COUPONS {
        let _ = write!(
            toml,
            "\n[[coupons]]\nid = {id}\nname = \"Coupon {id}\"\ndiscount = {{ type = \"FIXED\", amount = 1000 }}\nquantity = 100\n"
        );
    }
    toml
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.toml");
    std::fs::write(&path, seed_toml()).unwrap();
    let before = rss_kib();
    let started = Instant::now();
    let state = Seed::load(&path)
        .unwrap()
        .into_state(&Limits::default())
        .unwrap();
    let parsed = started.elapsed();
    let engine = Engine::start(EngineConfig::default(), Clock::system(), state)
        .await
        .unwrap();
    let ready = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await; // idle
    let after = rss_kib();
    let entities = USERS + PRODUCTS + COUPONS;
    println!("catalog: {USERS} users, {PRODUCTS} products x 2 options, {COUPONS} coupons");
    println!("start-up: {parsed:?} to read and check the seed, {ready:?} until every actor runs");
    println!(
        "idle RSS: {} MiB for the engine ({} MiB before it), {:.1} KiB per entity",
        (after - before) / 1024,
        before / 1024,
        (after - before) as f64 / entities as f64
    );
    assert!(engine.product(PRODUCTS).is_ok());
}
