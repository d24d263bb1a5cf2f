//! `EngineState`: the whole engine as plain data — every actor's state plus the id counters.
//! The engine builds it from a consistent read of all actors (`Engine::read_state`) and starts
//! from one (seed or, later, a snapshot). The audit checks it; snapshots will convert it to
//! their own on-disk model.

use serde::{Deserialize, Serialize};

use crate::actors::coupon::CouponState;
use crate::actors::data_platform::DataPlatformState;
use crate::actors::product::ProductState;
use crate::actors::sales::SalesState;
use crate::actors::user::UserState;

/// The next id each kind of entity will be given. Ids are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdCounters {
    pub next_user_id: u64,
    pub next_product_id: u64,
    pub next_option_id: u64,
    pub next_coupon_id: u64,
    pub next_order_id: u64,
}

impl Default for IdCounters {
    fn default() -> Self {
        IdCounters {
            next_user_id: 1,
            next_product_id: 1,
            next_option_id: 1,
            next_coupon_id: 1,
            next_order_id: 1,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineState {
    pub users: Vec<UserState>,
    pub products: Vec<ProductState>,
    pub coupons: Vec<CouponState>,
    pub sales: SalesState,
    pub data_platform: DataPlatformState,
    pub ids: IdCounters,
}

impl EngineState {
    /// Raises each counter above the largest id in use, so ids given later never collide.
    pub fn fit_counters(&mut self) {
        let above = |max: Option<u64>, counter: &mut u64| {
            *counter = (*counter).max(max.map_or(1, |max| max + 1));
        };
        let ids = &mut self.ids;
        above(self.users.iter().map(|u| u.id).max(), &mut ids.next_user_id);
        above(
            self.products.iter().map(|p| p.id).max(),
            &mut ids.next_product_id,
        );
        let options = self.products.iter().flat_map(|p| &p.options);
        above(options.map(|o| o.id).max(), &mut ids.next_option_id);
        above(
            self.coupons.iter().map(|c| c.id).max(),
            &mut ids.next_coupon_id,
        );
        let orders = self.users.iter().flat_map(|u| u.orders.keys().copied());
        above(orders.max(), &mut ids.next_order_id);
    }

    /// Entities in the state: users, products, coupons and orders.
    pub fn entity_count(&self) -> usize {
        let orders: usize = self.users.iter().map(|user| user.orders.len()).sum();
        self.users.len() + self.products.len() + self.coupons.len() + orders
    }
}
