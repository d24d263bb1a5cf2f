//! The journal's recovery rules, in process: a torn tail cut anywhere keeps exactly the whole
//! records before the cut; a flipped byte mid-journal refuses start with file and offset
//! (the override keeps what comes before it); names that disagree with headers, stale
//! temporary files, an unwritable directory and failing fsyncs; and random operation
//! sequences that recovery rebuilds exactly.

mod helpers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use commerce_engine::clock::Clock;
use commerce_engine::domain::state::EngineState;
use commerce_engine::engine::{NewProduct, NewProductOption, OrderLine};
use commerce_engine::journal::{self, FileOperation, RecoveryError, segment};
use commerce_engine::kernel::directory::Passivation;
use commerce_engine::kernel::supervision::{Moment, Panics};
use commerce_engine::{Engine, EngineConfig};
use helpers::{EXPIRY, catalog, config, open_in};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The test catalog, with a purchase limit of 6 mugs (product 2) per user, so random orders
/// meet it and its counts are rebuilt too.
fn seed() -> EngineState {
    let mut state = catalog(20, 100_000, 500, 50);
    state.products.get_mut(&2).unwrap().purchase_limit = Some(6);
    state
}

fn no_seed() -> Result<EngineState, String> {
    Err("the seed is not needed: a snapshot exists".into())
}

/// A journal of `charges` charges after the seed's snapshot, in a new directory.
async fn journal_of_charges(charges: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_in(dir.path(), seed(), Clock::system()).await;
    for amount in 1..=charges {
        engine.charge(1 + amount % 20, amount).await.unwrap();
    }
    engine.stop().await;
    dir
}

fn segments(dir: &Path) -> Vec<segment::Listed> {
    segment::list(dir).unwrap()
}

/// A copy of a stopped engine's directory: the journal, the snapshots and the entity store
/// (the order archive too: these journals are younger than `archive_after`, so it is empty).
fn copy_dir(from: &Path) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                std::fs::create_dir(&target).unwrap();
                copy(&path, &target);
            } else {
                std::fs::copy(&path, target).unwrap();
            }
        }
    }
    let to = tempfile::tempdir().unwrap();
    copy(from, to.path());
    to
}

/// Where each record of the segment ends.
fn record_ends(path: &Path, first: u64) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap();
    let scanned = segment::scan(&bytes, first);
    assert!(scanned.stop.is_none());
    let mut ends = Vec::new();
    let mut prefix = segment::header(first).to_vec();
    for (sequence, record) in &scanned.records {
        segment::encode_frame(*sequence, record, &mut prefix).unwrap();
        ends.push(prefix.len());
    }
    ends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_cut_at_any_byte_keeps_exactly_the_records_before_the_cut() {
    let dir = journal_of_charges(30).await;
    let last = segments(dir.path()).pop().unwrap();
    let ends = record_ends(&last.path, last.first);
    let whole = *ends.last().unwrap();
    let count = |end: usize| ends.iter().filter(|&&e| e <= end).count() as u64;
    let from = ends[ends.len() - 4];
    for cut in from..whole {
        let copy = copy_dir(dir.path());
        let path = copy.path().join(last.path.file_name().unwrap());
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(cut as u64).unwrap();
        let recovered = journal::recover(copy.path(), false, no_seed)
            .unwrap_or_else(|error| panic!("cut at {cut}: {error}"));
        let kept = last.first - 1 + count(cut);
        assert_eq!(recovered.position, kept, "cut at {cut}");
        assert_eq!(recovered.next_sequence, kept + 1);
        let left = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(
            ends.contains(&left),
            "cut at {cut}: the torn bytes are gone ({left})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_mid_journal_refuses_start_unless_overridden() {
    let dir = journal_of_charges(30).await;
    let last = segments(dir.path()).pop().unwrap();
    let ends = record_ends(&last.path, last.first);
    let at = ends[10] + 5; // inside the 12th record of the segment, with 18 after it
    let mut bytes = std::fs::read(&last.path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&last.path, &bytes).unwrap();

    let error = journal::recover(dir.path(), false, no_seed).unwrap_err();
    assert!(
        matches!(&error, RecoveryError::Corrupt { path, offset, .. } if *path == last.path && *offset == ends[10]),
        "{error}"
    );
    let message = error.to_string();
    let name = last.path.file_name().unwrap().to_str().unwrap();
    assert!(
        message.contains(name) && message.contains(&format!("byte {}", ends[10])),
        "{message}"
    );

    let recovered = journal::recover(dir.path(), true, no_seed).unwrap();
    assert_eq!(recovered.position, last.first - 1 + 11);
    let aside: PathBuf = last.path.with_extension("log.corrupt");
    assert_eq!(
        std::fs::read(aside).unwrap(),
        bytes,
        "the damaged file is kept aside"
    );
    // And the engine starts on it and goes on from there.
    let engine = open_in(dir.path(), seed(), Clock::system()).await;
    engine.charge(1, 1).await.unwrap();
    engine.stop().await;
    assert_eq!(
        journal::recover(dir.path(), false, no_seed)
            .unwrap()
            .position,
        last.first - 1 + 12
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_whose_name_disagrees_with_its_header_is_ordered_by_the_header() {
    let dir = journal_of_charges(600).await;
    let all = segments(dir.path());
    assert!(all.len() >= 3, "small segments: {} of them", all.len());
    let expected = journal::recover(copy_dir(dir.path()).path(), false, no_seed).unwrap();
    // Swap the names of the first two segments: their headers still tell them apart.
    let (a, b) = (&all[0].path, &all[1].path);
    let parked = dir.path().join("parked");
    std::fs::rename(a, &parked).unwrap();
    std::fs::rename(b, a).unwrap();
    std::fs::rename(&parked, b).unwrap();
    let recovered = journal::recover(dir.path(), false, no_seed).unwrap();
    assert_eq!(recovered.position, expected.position);
    assert_eq!(recovered.state, expected.state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_temporary_files_are_removed_on_start() {
    let dir = journal_of_charges(3).await;
    let stale = [
        dir.path().join(".snapshot-00000000000000000009.bin.tmp"),
        dir.path().join(".journal-00000000000000000099.log.tmp"),
    ];
    for path in &stale {
        std::fs::write(path, b"half written").unwrap();
    }
    journal::recover(dir.path(), false, no_seed).unwrap();
    for path in &stale {
        assert!(!path.exists(), "{} was removed", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_directory_refuses_start() {
    let parent = tempfile::tempdir().unwrap();
    let file = parent.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let storage = helpers::storage(&file.join("snapshots"));
    let seed = seed();
    let refused =
        commerce_engine::app::open(config(EXPIRY), storage, Clock::system(), move || Ok(seed))
            .await
            .err()
            .expect("refuses to start");
    assert!(refused.to_string().contains("a-file"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fsync_is_retried_and_nothing_is_acknowledged_before_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let failing = Arc::new(AtomicBool::new(false));
    let mut storage = helpers::storage(dir.path());
    let switch = failing.clone();
    storage.faults = Some(Arc::new(move |operation| {
        match operation == FileOperation::Sync && switch.load(Ordering::SeqCst) {
            true => Err(std::io::Error::other("injected fsync failure")),
            false => Ok(()),
        }
    }));
    let engine = helpers::open_with(config(EXPIRY), storage, seed(), Clock::system()).await;
    failing.store(true, Ordering::SeqCst);
    let charging = tokio::spawn({
        let engine = engine.clone();
        async move { engine.charge(3, 777).await }
    });
    let journal = engine.journal().unwrap().clone();
    while journal.stats().write_failures.load(Ordering::SeqCst) < 3 {
        tokio::task::yield_now().await;
    }
    assert!(
        !charging.is_finished(),
        "no reply before the change is durable"
    );
    failing.store(false, Ordering::SeqCst);
    assert_eq!(charging.await.unwrap().unwrap(), 100_777);
    engine.stop().await;
    let recovered = journal::recover(dir.path(), false, no_seed).unwrap();
    assert_eq!(recovered.state.users[&3].balance, 100_777);
}

/// One random operation of a buyer or an admin; refusals are part of the sequence too. Pay and
/// cancel pick among the orders this stream placed.
async fn random_operation(engine: &Engine, rng: &mut StdRng, orders: &mut Vec<(u64, u64)>) {
    let user_id = rng.random_range(1..=20);
    match rng.random_range(0..10) {
        0 => drop(engine.charge(user_id, rng.random_range(1..50_000)).await),
        1 => drop(engine.issue_coupon(rng.random_range(1..=3), user_id).await),
        2..=4 => {
            let lines = (0..rng.random_range(1..=3))
                .map(|_| {
                    let (product_id, option_id) =
                        [(1, 11), (1, 12), (2, 21), (3, 31)][rng.random_range(0..4)];
                    OrderLine {
                        product_id,
                        option_id: Some(option_id),
                        quantity: rng.random_range(1..=3),
                    }
                })
                .collect();
            if let Ok(order) = engine.place_order(user_id, lines).await {
                orders.push((order.order_id, user_id));
            }
        }
        5..=7 if !orders.is_empty() => {
            let (order_id, buyer) = orders[rng.random_range(0..orders.len())];
            let coupon = rng.random_bool(0.3).then(|| rng.random_range(1..=2));
            drop(engine.pay(order_id, buyer, coupon).await);
        }
        8 if !orders.is_empty() => {
            let (order_id, buyer) = orders[rng.random_range(0..orders.len())];
            drop(engine.cancel(order_id, buyer).await);
        }
        _ => match rng.random_range(0..3) {
            0 => drop(engine.restock(2, 21, rng.random_range(1..5)).await),
            1 => drop(engine.create_user(None, rng.random_range(0..1_000)).await),
            _ => {
                let product = NewProduct {
                    name: "Random".into(),
                    category: "misc".into(),
                    price: rng.random_range(1..10_000),
                    options: vec![NewProductOption {
                        name: "Only".into(),
                        stock: rng.random_range(0..10),
                    }],
                    purchase_limit: rng.random_bool(0.5).then(|| rng.random_range(1..4)),
                };
                drop(engine.create_product(product).await)
            }
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operation_sequences_are_rebuilt_exactly() {
    rebuilt_exactly(Passivation::default(), None).await;
}

/// The same with one handled message in thirteen failing after its work: the entity's state
/// garbled, then a panic (`src/kernel/supervision.rs`). Each failed entity is restored from the
/// journal, so the live state still is exactly what recovery rebuilds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operation_sequences_with_failing_handlers_are_rebuilt_exactly() {
    let handled = Arc::new(AtomicU64::new(0));
    let counted = handled.clone();
    let panics = Panics(Arc::new(move |moment, _, state| {
        if moment != Moment::Handled {
            return false;
        }
        let failing = counted.fetch_add(1, Ordering::Relaxed) % 13 == 12;
        if failing {
            helpers::garble(state);
        }
        failing
    }));
    rebuilt_exactly(Passivation::default(), Some(panics)).await;
    assert!(handled.load(Ordering::Relaxed) > 13, "handlers failed");
}

/// The same with every actor stopping after every message: the live state is mostly passive
/// when the snapshot is taken and when recovery reads it back, and the restored engine starts
/// every entity passive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operation_sequences_over_passive_entities_are_rebuilt_exactly() {
    rebuilt_exactly(helpers::EVERY_MESSAGE, None).await;
}

async fn rebuilt_exactly(passivation: Passivation, panics: Option<Panics>) {
    let open = |dir: &Path| {
        let config = EngineConfig {
            passivation,
            panics: panics.clone(),
            ..helpers::config(helpers::EXPIRY)
        };
        helpers::open_with(config, helpers::storage(dir), seed(), Clock::system())
    };
    for seed_value in [1u64, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path()).await;
        // Four buyers' streams at once, so chains interleave (a refusal's releases between
        // other placements' reservations) and replay must follow append order exactly.
        let streams = (0..4u64).map(|stream| {
            let engine = engine.clone();
            async move {
                let mut rng = StdRng::seed_from_u64(seed_value * 10 + stream);
                let mut orders = Vec::new();
                for step in 0..150 {
                    random_operation(&engine, &mut rng, &mut orders).await;
                    if stream == 0 && step == 75 {
                        engine.snapshot().await.unwrap();
                    }
                }
            }
        });
        helpers::race(streams).await;
        let live = helpers::settled(&engine).await;
        let popular = engine.popular(3, 100).await.unwrap();
        engine.stop().await;
        let mut rebuilt = journal::recover(dir.path(), false, no_seed).unwrap();
        for record in std::mem::take(&mut rebuilt.unfinished) {
            rebuilt.state.apply(record).unwrap();
        }
        let mut state = rebuilt.state;
        assert!(state.ids.next_order_id >= live.ids.next_order_id);
        state.ids.next_order_id = live.ids.next_order_id;
        assert!(
            state == live,
            "seed {seed_value}: the rebuilt state differs"
        );
        let restored = open(dir.path()).await;
        assert_eq!(restored.directory().running_count(), 0);
        let restored_state = restored.read_state().await.unwrap();
        helpers::assert_rebuilt(restored_state, &live, "the restored engine");
        assert_eq!(restored.popular(3, 100).await.unwrap(), popular);
        helpers::assert_audit_ok(&restored).await;
        restored.stop().await;
    }
}

#[tokio::test]
async fn an_engine_without_a_journal_has_no_snapshots() {
    let engine = Engine::start(EngineConfig::default(), Clock::system(), &seed())
        .await
        .unwrap();
    assert!(engine.journal().is_none());
    assert!(engine.snapshot().await.is_err());
}
