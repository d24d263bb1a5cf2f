//! The file format and the load policy: every kind of damage is reported with a reason and
//! skipped for an older good file; none readable is an error unless overridden.

use super::*;
use crate::config::Limits;
use crate::seed::{Seed, SeedOption, SeedProduct, SeedUsers};

const TAKEN_AT: Timestamp = Timestamp(1_790_000_000_000);

fn state(users: u64) -> EngineState {
    Seed {
        users: SeedUsers {
            count: users,
            initial_balance: 1_000,
        },
        products: vec![SeedProduct {
            id: 1,
            name: "Mug".into(),
            category: "home".into(),
            price: 10_000,
            options: vec![SeedOption {
                id: 11,
                name: "White".into(),
                stock: 5,
            }],
            purchase_limit: Some(2),
        }],
        coupons: vec![],
    }
    .into_state(&Limits::default())
    .unwrap()
}

fn write(dir: &Path, sequence: u64, users: u64) -> PathBuf {
    let bytes = encode_file(sequence, sequence * 10, TAKEN_AT, &state(users)).unwrap();
    write_atomically(dir, sequence, &bytes).unwrap()
}

/// Rewrites the header checksum after a deliberate header edit, so later checks are reached.
fn reseal_header(bytes: &mut [u8]) {
    let crc = crc32fast::hash(&bytes[..44]);
    bytes[44..48].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn a_file_round_trips() {
    let original = state(3);
    let bytes = encode_file(7, 70, TAKEN_AT, &original).unwrap();
    assert_eq!(&bytes[..8], b"CMRCSNAP");
    let loaded = decode_file(&bytes).unwrap();
    assert_eq!((loaded.sequence, loaded.taken_at), (7, TAKEN_AT));
    assert_eq!(loaded.position, 70);
    assert_eq!(loaded.state, original);
}

#[test]
fn every_kind_of_damage_is_named() {
    let good = encode_file(1, 0, TAKEN_AT, &state(3)).unwrap();
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let mut magic = good.clone();
    magic[0] = b'X';
    let mut future = good.clone();
    future[8..12].copy_from_slice(&4u32.to_le_bytes());
    reseal_header(&mut future);
    let mut header = good.clone();
    header[20] ^= 1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty"),
        ("short", good[..10].to_vec(), "truncated"),
        (
            "truncated body",
            good[..good.len() - 3].to_vec(),
            "truncated",
        ),
        ("flipped body byte", flipped, "body checksum"),
        ("wrong magic", magic, "magic"),
        ("future version", future, "version 4"),
        ("damaged header", header, "header checksum"),
    ];
    for (case, bytes, expected) in cases {
        let reason = decode_file(&bytes).unwrap_err();
        assert!(reason.contains(expected), "{case}: {reason}");
    }
}

#[test]
fn an_inconsistent_state_fails_its_check_on_both_sides_of_the_disk() {
    let mut broken = state(2);
    broken.users.get_mut(&1).unwrap().balance += 1;
    let failures = check(&mut broken, TAKEN_AT).unwrap_err();
    assert!(failures.contains("money"), "{failures}");
    let bytes = encode_file(1, 0, TAKEN_AT, &broken).unwrap();
    let reason = decode_file(&bytes).unwrap_err();
    assert!(reason.contains("money"), "{reason}");
}

#[test]
fn a_state_that_ends_mid_placement_is_checked_as_recovery_would_finish_it() {
    use crate::wire::Record;
    let mut midway = state(1);
    let reserved = Record::ReservedFor {
        product_id: 1,
        order_id: 9,
        user_id: 1,
        lines: vec![(11, 2)],
    };
    midway.apply(reserved).unwrap();
    let before = midway.clone();
    assert_eq!(check(&mut midway, TAKEN_AT), Ok(()));
    assert_eq!(midway, before, "the check leaves the state as it was");
}

#[test]
fn a_version_1_file_reads_with_position_0() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/snapshot-v1.bin"
    ))
    .unwrap();
    let loaded = decode_file(&bytes).unwrap();
    assert_eq!(loaded.position, 0);
    assert!(!loaded.state.users.is_empty());
}

#[test]
fn a_name_that_disagrees_with_the_header_is_ordered_by_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let third = write(dir.path(), 3, 1);
    std::fs::rename(&third, dir.path().join(file_name(1))).unwrap();
    write(dir.path(), 2, 2);
    let order: Vec<u64> = list(dir.path()).unwrap().iter().map(|f| f.0).collect();
    assert_eq!(order, [3, 2]);
    assert_eq!(read_newest(dir.path(), false).unwrap().unwrap().sequence, 3);
}

#[test]
fn the_newest_good_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1, 1);
    write(dir.path(), 2, 2);
    let newest = write(dir.path(), 3, 3);
    assert_eq!(read_newest(dir.path(), false).unwrap().unwrap().sequence, 3);
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&newest, bytes).unwrap();
    let loaded = read_newest(dir.path(), false).unwrap().unwrap();
    assert_eq!((loaded.sequence, loaded.state.users.len()), (2, 2));
    assert_eq!(loaded.path, dir.path().join(file_name(2)));
}

#[test]
fn none_readable_refuses_unless_overridden() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file_name(1)), b"").unwrap();
    std::fs::write(
        dir.path().join(file_name(2)),
        b"garbage that is long enough to hold a header....",
    )
    .unwrap();
    let error = read_newest(dir.path(), false).unwrap_err();
    assert!(
        matches!(error, SnapshotError::NoneReadable { count: 2, .. }),
        "{error}"
    );
    assert!(read_newest(dir.path(), true).unwrap().is_none());
}

#[test]
fn no_files_means_no_snapshot_and_other_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        read_newest(&dir.path().join("missing"), false)
            .unwrap()
            .is_none()
    );
    std::fs::write(
        dir.path().join(".snapshot-00000000000000000009.bin.tmp"),
        b"half written",
    )
    .unwrap();
    std::fs::write(dir.path().join(".gitkeep"), b"").unwrap();
    assert!(read_newest(dir.path(), false).unwrap().is_none());
}

#[test]
fn pruning_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    for sequence in 1..=7 {
        write(dir.path(), sequence, 1);
    }
    prune(dir.path(), 3).unwrap();
    let left: Vec<u64> = list(dir.path())
        .unwrap()
        .into_iter()
        .map(|(sequence, _, _)| sequence)
        .collect();
    assert_eq!(left, vec![7, 6, 5]);
}

#[test]
fn restored_order_lines_share_their_product_name() {
    use crate::model::{Order, OrderItem, OrderStatus};
    let mut original = state(1);
    let order = Order {
        order_id: 1,
        user_id: 1,
        status: OrderStatus::Pending,
        items: vec![OrderItem {
            product_id: 1,
            option_id: 11,
            name: "Mug".into(),
            quantity: 1,
            unit_price: 10_000,
            line_total: 10_000,
        }],
        total_amount: 10_000,
        coupon_id: None,
        discount_amount: None,
        paid_amount: None,
        created_at: TAKEN_AT,
        expires_at: TAKEN_AT,
        paid_at: None,
    };
    original.users.get_mut(&1).unwrap().orders.insert(1, order);
    // The model conversion alone: the order holds no stock, so the state would fail its check.
    let loaded = crate::wire::snapshot::SnapshotV3::from_state(1, TAKEN_AT, &original).into_state();
    let line = &loaded.users[&1].orders[&1].items[0];
    assert_eq!(&*line.name, "Mug");
    assert!(std::sync::Arc::ptr_eq(
        &line.name,
        &loaded.products[&1].name
    ));
}
