//! A flush writes what changed and the store then reads back as the state it was given.

use super::*;
use crate::config::Limits;
use crate::model::{Order, OrderItem, OrderStatus};
use crate::seed::{Seed, SeedCoupon, SeedOption, SeedProduct, SeedUsers};
use crate::wire::snapshot::OrderV1;

const AT: Timestamp = Timestamp(1_790_000_000_000);

fn state() -> EngineState {
    Seed {
        users: SeedUsers {
            count: 5,
            initial_balance: 100_000,
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
        coupons: vec![SeedCoupon {
            id: 1,
            name: "Ten off".into(),
            discount: crate::model::Discount::Fixed { amount: 1_000 },
            quantity: 3,
            expires_at: None,
        }],
    }
    .into_state(&Limits::default())
    .unwrap()
}

fn order(order_id: u64, user_id: u64) -> OrderV1 {
    OrderV1::from_order(&Order {
        order_id,
        user_id,
        status: OrderStatus::Pending,
        items: vec![OrderItem {
            product_id: 1,
            option_id: 11,
            name: "Mug".into(),
            quantity: 2,
            unit_price: 10_000,
            line_total: 20_000,
        }],
        total_amount: 20_000,
        coupon_id: None,
        discount_amount: None,
        paid_amount: None,
        created_at: AT,
        expires_at: Timestamp(AT.0 + 600_000),
        paid_at: None,
    })
}

/// An order placed, paid with a coupon and committed; another placed and released; a charge,
/// a restock, a new user, an id block: every kind of entity and what is not one.
fn records() -> Vec<Record> {
    let lines = vec![(11, 2)];
    vec![
        Record::CouponIssued {
            coupon_id: 1,
            user_id: 2,
            issued_at: AT.0,
        },
        Record::OrderIdsTaken { below: 1024 },
        Record::ReservedFor {
            product_id: 1,
            order_id: 1,
            user_id: 2,
            lines: lines.clone(),
        },
        Record::OrderPlaced {
            user_id: 2,
            order: order(1, 2),
        },
        Record::OrderPaid {
            user_id: 2,
            order_id: 1,
            coupon_id: Some(1),
            discount_amount: 1_000,
            paid_amount: 19_000,
            paid_at: AT.0 + 1,
        },
        Record::Committed {
            product_id: 1,
            order_id: 1,
        },
        Record::ReservedFor {
            product_id: 1,
            order_id: 2,
            user_id: 3,
            lines,
        },
        Record::OrderPlaced {
            user_id: 3,
            order: order(2, 3),
        },
        Record::OrderCancelled {
            user_id: 3,
            order_id: 2,
        },
        Record::Released {
            product_id: 1,
            order_id: 2,
        },
        Record::Charged {
            user_id: 4,
            amount: 50,
        },
        Record::Restocked {
            product_id: 1,
            option_id: 11,
            quantity: 7,
        },
        Record::UserCreated {
            user_id: 6,
            balance: 9,
        },
        Record::Delivered { order_id: 1 },
    ]
}

#[test]
fn nothing_flushed_reads_as_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = EntityStore::open(dir.path()).unwrap();
    assert!(store.load().unwrap().is_none());
    assert_eq!(store.position().unwrap(), None);
}

#[test]
fn each_flush_writes_what_changed_and_reads_back_as_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = state();
    let store = EntityStore::open(dir.path()).unwrap();
    let first = store.flush(&state, &Changed::everything(), 0, AT).unwrap();
    assert_eq!(first.entities, 5 + 1 + 1);
    let mut changed = Changed::default();
    for (sequence, record) in records().into_iter().enumerate() {
        changed.mark(&record);
        state.apply(record).unwrap();
        if sequence % 5 == 4 {
            store
                .flush(&state, &changed, sequence as u64 + 1, AT)
                .unwrap();
            changed = Changed::default();
        }
    }
    assert_eq!(changed.count(), Some(3), "users 4 and 6, product 1");
    let last = store.flush(&state, &changed, 14, AT).unwrap();
    assert_eq!(last.entities, 3, "only what changed since the last flush");
    drop(store);

    let stored = EntityStore::open(dir.path())
        .unwrap()
        .load()
        .unwrap()
        .unwrap();
    assert_eq!((stored.position, stored.taken_at), (14, AT));
    assert_eq!(stored.state, state);
    assert_eq!(state.data_platform.delivered, 1, "the meta came along");
}

#[test]
fn a_whole_flush_of_an_older_state_removes_what_the_store_has_beyond_it() {
    let dir = tempfile::tempdir().unwrap();
    let older = state();
    let mut newer = older.clone();
    newer
        .apply(Record::UserCreated {
            user_id: 6,
            balance: 9,
        })
        .unwrap();
    let store = EntityStore::open(dir.path()).unwrap();
    store.flush(&newer, &Changed::everything(), 2, AT).unwrap();
    store.flush(&older, &Changed::everything(), 1, AT).unwrap();
    let stored = store.load().unwrap().unwrap();
    assert_eq!((stored.position, stored.state), (1, older));
}
