//! The engine's id counters, live: handed out with atomic increments so ids never repeat, and
//! order ids in blocks recorded in the journal so they never repeat across a crash either.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::state::IdCounters;
use crate::kernel::actors::Recorder;
use crate::model::OrderId;
use crate::wire::Record;

/// Order ids are taken in blocks of this many: a block is recorded in the journal before any
/// of its ids is used, so no id repeats across a crash (a crash skips the rest of a block).
const ORDER_ID_BLOCK: u64 = 1024;

/// The id counters, live. Handed out with `fetch_add`, so ids never repeat. User, product,
/// option and coupon ids are recorded with their entity; order ids by block (`next_order`).
pub(super) struct Ids {
    pub(super) user: AtomicU64,
    pub(super) product: AtomicU64,
    pub(super) option: AtomicU64,
    pub(super) coupon: AtomicU64,
    order: AtomicU64,
    /// Order ids below this are covered by a recorded block.
    order_ceiling: AtomicU64,
    /// Held while a new block is recorded.
    extending: std::sync::Mutex<()>,
}

impl Ids {
    pub(super) fn new(counters: IdCounters) -> Ids {
        Ids {
            user: AtomicU64::new(counters.next_user_id),
            product: AtomicU64::new(counters.next_product_id),
            option: AtomicU64::new(counters.next_option_id),
            coupon: AtomicU64::new(counters.next_coupon_id),
            order: AtomicU64::new(counters.next_order_id),
            order_ceiling: AtomicU64::new(counters.next_order_id),
            extending: std::sync::Mutex::new(()),
        }
    }

    /// The next order id, recording a new block first when the current one is used up.
    pub(super) fn next_order(&self, recorder: &Recorder) -> OrderId {
        let id = self.order.fetch_add(1, Ordering::SeqCst);
        if id >= self.order_ceiling.load(Ordering::Acquire) {
            let _one = self.extending.lock().expect("never poisoned");
            if id >= self.order_ceiling.load(Ordering::Acquire) {
                let below = id.saturating_add(ORDER_ID_BLOCK);
                recorder.record(|| Record::OrderIdsTaken { below });
                self.order_ceiling.store(below, Ordering::Release);
            }
        }
        id
    }

    pub(super) fn counters(&self) -> IdCounters {
        IdCounters {
            next_user_id: self.user.load(Ordering::SeqCst),
            next_product_id: self.product.load(Ordering::SeqCst),
            next_option_id: self.option.load(Ordering::SeqCst),
            next_coupon_id: self.coupon.load(Ordering::SeqCst),
            next_order_id: self.order.load(Ordering::SeqCst),
        }
    }
}
