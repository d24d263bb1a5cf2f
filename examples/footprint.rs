//! Memory and start-up of the engine alone (no journal, so no replica of the state beside it)
//! on a large catalog: USERS users, PRODUCTS products (2 options each) and COUPONS coupons,
//! written as a seed file and loaded the way the server loads it. Reports the start-up time
//! (seed read + every entity registered, passive: no actor starts) and the idle RSS.
//!
//! `cargo run --release --example footprint -- [USERS] [PRODUCTS] [COUPONS]`
//! (defaults 1,000,000, 100,000 and 10,000). Run it with 0 users too: the difference divided
//! by the users is what one idle user costs, map overhead included.

use std::fmt::Write;
use std::time::{Duration, Instant};

use commerce_engine::clock::Clock;
use commerce_engine::config::Limits;
use commerce_engine::seed::Seed;
use commerce_engine::{Engine, EngineConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

fn seed_toml(users: u64, products: u64, coupons: u64) -> String {
    let mut toml = format!("[users]\ncount = {users}\ninitial_balance = 100000\n");
    for id in 1..=products {
        let _ = write!(
            toml,
            "\n[[products]]\nid = {id}\nname = \"Product {id}\"\ncategory = \"c{}\"\nprice = {}\noptions = [{{ id = {}, name = \"A\", stock = 100 }}, {{ id = {}, name = \"B\", stock = 100 }}]\n",
            id % 10,
            1_000 + id,
            id * 2 - 1,
            id * 2
        );
    }
    for id in 1..=coupons {
        let _ = write!(
            toml,
            "\n[[coupons]]\nid = {id}\nname = \"Coupon {id}\"\ndiscount = {{ type = \"FIXED\", amount = 1000 }}\nquantity = 100\n"
        );
    }
    toml
}

fn argument(index: usize, default: u64) -> u64 {
    std::env::args()
        .nth(index)
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let (users, products, coupons) = (
        argument(1, 1_000_000),
        argument(2, 100_000),
        argument(3, 10_000),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.toml");
    std::fs::write(&path, seed_toml(users, products, coupons)).unwrap();
    let before = rss_kib();
    let started = Instant::now();
    let state = Seed::load(&path)
        .unwrap()
        .into_state(&Limits::default())
        .unwrap();
    let parsed = started.elapsed();
    let engine = Engine::start(EngineConfig::default(), Clock::system(), &state)
        .await
        .unwrap();
    drop(state); // the server hands it to the journal's replica instead
    let ready = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await; // idle
    let retained = rss_kib();
    // SAFETY: asks the allocator to return freed memory to the OS; no pointers involved.
    unsafe { libmimalloc_sys::mi_collect(true) };
    let after = rss_kib();
    println!("RSS before returning freed memory: {} MiB", retained / 1024);
    let entities = (users + products + coupons).max(1);
    println!("catalog: {users} users, {products} products x 2 options, {coupons} coupons");
    println!("start-up: {parsed:?} to read and check the seed, {ready:?} until it serves");
    println!(
        "idle RSS: {} MiB for the engine ({} MiB before it), {:.0} bytes per entity; {} actors running",
        (after.saturating_sub(before)) / 1024,
        before / 1024,
        after.saturating_sub(before) as f64 * 1024.0 / entities as f64,
        engine.directory().running_count()
    );
    assert!(engine.product(products.max(1)).is_ok() || products == 0);
}
