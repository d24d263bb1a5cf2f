//! redb against fjall on the order archive's workload (BENCHMARKS.md, "The order archive"):
//! ended orders written in batches, each batch durable before it counts (fsync), keyed by order
//! id with a per-user index; then random point reads and users' newest pages of 20.
//!
//! `cargo run --release --example archive_bench -- [orders] [batch]` (default 1,000,000 and
//! 1,000), in a temporary directory on the same disk as the working directory.

use std::time::{Duration, Instant};

use commerce_engine::codec;
use commerce_engine::wire::snapshot::{OrderItemV1, OrderStatusV1, OrderV1};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const USERS: u64 = 100_000;
const READS: usize = 100_000;
const PAGES: usize = 20_000;
const PAGE: usize = 20;

/// A realistic ended order: two lines, as the archive would hold it.
fn order(order_id: u64, user_id: u64) -> Vec<u8> {
    let item = |product_id: u64| OrderItemV1 {
        product_id,
        option_id: product_id * 10 + 1,
        name: format!("Product {product_id} in a plausible length"),
        quantity: 2,
        unit_price: 12_900,
        line_total: 25_800,
    };
    let order = OrderV1 {
        order_id,
        status: OrderStatusV1::Paid,
        items: vec![item(order_id % 100), item(order_id % 100 + 1)],
        total_amount: 51_600,
        coupon_id: None,
        discount_amount: Some(0),
        paid_amount: Some(51_600),
        created_at: 1_795_000_000_000 + order_id,
        expires_at: 1_795_000_600_000 + order_id,
        paid_at: Some(1_795_000_001_000 + order_id),
    };
    let _ = user_id;
    codec::encode(&order).expect("an order encodes")
}

/// The index key: user id then order id, both big-endian, so a user's orders are contiguous
/// and in id order.
fn index_key(user_id: u64, order_id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&user_id.to_be_bytes());
    key[8..].copy_from_slice(&order_id.to_be_bytes());
    key
}

struct Measured {
    write: Duration,
    reads: Duration,
    pages: Duration,
    bytes: u64,
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                dir_bytes(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

fn user_of(order_id: u64) -> u64 {
    1 + order_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) % USERS
}

fn redb_run(dir: &std::path::Path, orders: u64, batch: u64) -> Measured {
    use redb::{Database, Durability, ReadableDatabase, TableDefinition};
    const ORDERS: TableDefinition<u64, &[u8]> = TableDefinition::new("orders");
    const BY_USER: TableDefinition<&[u8; 16], ()> = TableDefinition::new("by_user");
    let db = Database::create(dir.join("archive.redb")).unwrap();
    let started = Instant::now();
    for first in (1..=orders).step_by(batch as usize) {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        {
            let mut table = txn.open_table(ORDERS).unwrap();
            let mut index = txn.open_table(BY_USER).unwrap();
            for order_id in first..(first + batch).min(orders + 1) {
                let user_id = user_of(order_id);
                table
                    .insert(order_id, order(order_id, user_id).as_slice())
                    .unwrap();
                index.insert(&index_key(user_id, order_id), ()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let write = started.elapsed();
    let mut rng = StdRng::seed_from_u64(1);
    let started = Instant::now();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(ORDERS).unwrap();
    for _ in 0..READS {
        let id = rng.random_range(1..=orders);
        assert!(table.get(id).unwrap().is_some());
    }
    let reads = started.elapsed();
    let index = txn.open_table(BY_USER).unwrap();
    let started = Instant::now();
    for _ in 0..PAGES {
        let user_id = rng.random_range(1..=USERS);
        let (low, high) = (index_key(user_id, 0), index_key(user_id, u64::MAX));
        let entries = index.range::<&[u8; 16]>(&low..=&high).unwrap();
        for entry in entries.rev().take(PAGE) {
            let (key, _) = entry.unwrap();
            let order_id = u64::from_be_bytes(key.value()[8..].try_into().unwrap());
            assert!(table.get(order_id).unwrap().is_some());
        }
    }
    let pages = started.elapsed();
    drop((table, index, txn, db));
    Measured {
        write,
        reads,
        pages,
        bytes: dir_bytes(dir),
    }
}

fn fjall_run(dir: &std::path::Path, orders: u64, batch: u64) -> Measured {
    use fjall::{Database, KeyspaceCreateOptions, PersistMode};
    let db = Database::builder(dir.join("archive.fjall")).open().unwrap();
    let table = db
        .keyspace("orders", KeyspaceCreateOptions::default)
        .unwrap();
    let index = db
        .keyspace("by_user", KeyspaceCreateOptions::default)
        .unwrap();
    let started = Instant::now();
    for first in (1..=orders).step_by(batch as usize) {
        let mut writes = db.batch();
        for order_id in first..(first + batch).min(orders + 1) {
            let user_id = user_of(order_id);
            writes.insert(&table, order_id.to_be_bytes(), order(order_id, user_id));
            writes.insert(&index, index_key(user_id, order_id), []);
        }
        writes.commit().unwrap();
        db.persist(PersistMode::SyncAll).unwrap();
    }
    let write = started.elapsed();
    let mut rng = StdRng::seed_from_u64(1);
    let started = Instant::now();
    for _ in 0..READS {
        let id: u64 = rng.random_range(1..=orders);
        assert!(table.get(id.to_be_bytes()).unwrap().is_some());
    }
    let reads = started.elapsed();
    let started = Instant::now();
    for _ in 0..PAGES {
        let user_id = rng.random_range(1..=USERS);
        for entry in index.prefix(user_id.to_be_bytes()).rev().take(PAGE) {
            let key = entry.key().unwrap();
            let order_id = u64::from_be_bytes(key[8..].try_into().unwrap());
            assert!(table.get(order_id.to_be_bytes()).unwrap().is_some());
        }
    }
    let pages = started.elapsed();
    db.persist(PersistMode::SyncAll).unwrap();
    drop((table, index, db));
    Measured {
        write,
        reads,
        pages,
        bytes: dir_bytes(dir),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let orders: u64 = args.next().map_or(1_000_000, |n| n.parse().unwrap());
    let batch: u64 = args.next().map_or(1_000, |n| n.parse().unwrap());
    println!(
        "{orders} orders in batches of {batch}, {USERS} users; {READS} point reads; {PAGES} pages of {PAGE}"
    );
    println!(
        "{:<8}{:>14}{:>16}{:>18}{:>16}",
        "store", "write/s", "point read us", "page of 20 us", "bytes/order"
    );
    for store in ["redb", "fjall"] {
        let dir = tempfile::tempdir_in(".").unwrap();
        let measured = match store {
            "redb" => redb_run(dir.path(), orders, batch),
            _ => fjall_run(dir.path(), orders, batch),
        };
        println!(
            "{:<8}{:>14.0}{:>16.2}{:>18.1}{:>16.0}",
            store,
            orders as f64 / measured.write.as_secs_f64(),
            measured.reads.as_secs_f64() * 1e6 / READS as f64,
            measured.pages.as_secs_f64() * 1e6 / PAGES as f64,
            measured.bytes as f64 / orders as f64
        );
    }
}
