//! What the data platform keeps: paid orders its sink has not acknowledged yet, and counters.

use std::collections::BTreeMap;

use crate::model::{OrderId, OrderPaid};

/// What the data platform keeps: records not yet acknowledged, and counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataPlatformState {
    pub pending: BTreeMap<OrderId, OrderPaid>,
    pub delivered: u64,
    pub failed_attempts: u64,
}

impl DataPlatformState {
    /// Forgets an acknowledged record; false if it was not pending.
    pub fn acknowledge(&mut self, order_id: OrderId) -> bool {
        let known = self.pending.remove(&order_id).is_some();
        if known {
            self.delivered += 1;
        }
        known
    }
}
