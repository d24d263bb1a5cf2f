//! `EngineState`: the whole engine as plain data — every actor's state plus the id counters,
//! each kind of entity keyed by its id. The engine starts from one (seed, or what recovery
//! rebuilt from a snapshot and the journal), the audit checks one, and the journal's
//! checkpointer keeps one up to date by replaying records (`apply`), which is what snapshots
//! are written from.

use std::collections::BTreeMap;

use crate::clock::Timestamp;
use crate::domain::coupon::CouponState;
use crate::domain::data_platform::DataPlatformState;
use crate::domain::encoding::stock_lines;
use crate::domain::product::ProductState;
use crate::domain::sales::SalesState;
use crate::domain::user::UserState;
use crate::model::{CouponId, Order, OrderPaid, OrderStatus, ProductId, UserId};
use crate::wire::Record;
use crate::wire::snapshot::ProductV2;

/// The next id each kind of entity will be given. Ids are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineState {
    pub users: BTreeMap<UserId, UserState>,
    pub products: BTreeMap<ProductId, ProductState>,
    pub coupons: BTreeMap<CouponId, CouponState>,
    pub sales: SalesState,
    pub data_platform: DataPlatformState,
    pub ids: IdCounters,
    /// How many ended orders have left memory for the archive (`src/archive.rs`). While it
    /// is zero every order is in `users`, and the audit can match every running total
    /// against the orders themselves.
    pub archived_orders: u64,
}

/// Replaces each line's copy of its product's name with the product's own.
fn share_product_names(products: &BTreeMap<ProductId, ProductState>, order: &mut Order) {
    for item in &mut order.items {
        if let Some(product) = products.get(&item.product_id)
            && product.name == item.name
        {
            item.name = product.name.clone();
        }
    }
}

/// Raises `counter` above `id`.
fn above(counter: &mut u64, id: u64) {
    *counter = (*counter).max(id.saturating_add(1));
}

impl EngineState {
    /// Raises each counter above the largest id in use, so ids given later never collide.
    /// Reserved stock counts: an order id that holds stock is taken even before its order is.
    pub fn fit_counters(&mut self) {
        self.ids = self.fitted_counters();
    }

    /// The id counters raised above every id in use (see `fit_counters`).
    pub fn fitted_counters(&self) -> IdCounters {
        let mut counters = self.ids;
        let ids = &mut counters;
        for user in self.users.values() {
            above(&mut ids.next_user_id, user.id);
            for &order_id in user.orders.keys() {
                above(&mut ids.next_order_id, order_id);
            }
        }
        for product in self.products.values() {
            above(&mut ids.next_product_id, product.id);
            for option in &product.options {
                above(&mut ids.next_option_id, option.id);
            }
            for &order_id in product.reservations.keys() {
                above(&mut ids.next_order_id, order_id);
            }
        }
        for coupon in self.coupons.values() {
            above(&mut ids.next_coupon_id, coupon.id);
        }
        counters
    }

    /// Points every order line at its product's name. A decoded order carries its own copy
    /// of each name; a running engine shares the product's, and so does a restored one.
    pub fn share_product_names(&mut self) {
        for user in self.users.values_mut() {
            for order in user.orders.values_mut() {
                share_product_names(&self.products, order);
            }
        }
    }

    /// Entities in the state: users, products, coupons and orders.
    pub fn entity_count(&self) -> usize {
        let orders: usize = self.users.values().map(|user| user.orders.len()).sum();
        self.users.len() + self.products.len() + self.coupons.len() + orders
    }

    /// Replays one journal record: the same state method the actor ran, with the values it
    /// recorded. A record that does not fit the state (an unknown entity, a payment the state
    /// refuses) is an error naming it; the state is then unchanged.
    pub fn apply(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::UserCreated { user_id, balance } => {
                if self.users.contains_key(&user_id) {
                    return Err(format!("user {user_id} exists already"));
                }
                self.users.insert(user_id, UserState::new(user_id, balance));
                above(&mut self.ids.next_user_id, user_id);
            }
            Record::Charged { user_id, amount } => {
                let user = self.user(user_id)?;
                user.charge(amount, u64::MAX).map_err(|e| e.to_string())?;
            }
            Record::OrderPlaced { user_id, order } => {
                let mut order = order.into_order(user_id);
                share_product_names(&self.products, &mut order);
                above(&mut self.ids.next_order_id, order.order_id);
                self.user(user_id)?.add_order(order)?;
            }
            Record::OrderPaid {
                user_id,
                order_id,
                coupon_id,
                discount_amount,
                paid_amount,
                paid_at,
            } => {
                let user = self.user(user_id)?;
                let paid_at = Timestamp(paid_at);
                user.mark_paid(order_id, coupon_id, discount_amount, paid_amount, paid_at)
                    .map_err(|e| e.to_string())?;
                let record = OrderPaid::of(&user.orders[&order_id]).expect("the order is PAID");
                self.sales.record_order(&record);
                self.data_platform.pending.insert(order_id, record);
            }
            Record::OrderCancelled { user_id, order_id } => {
                self.user(user_id)?
                    .cancel(order_id)
                    .map_err(|e| e.to_string())?;
            }
            Record::OrderExpired {
                user_id,
                order_id,
                at,
            } => {
                if self
                    .user(user_id)?
                    .expire_if_due(order_id, Timestamp(at))
                    .is_none()
                {
                    return Err(format!("order {order_id} cannot expire at {at}"));
                }
            }
            Record::ProductCreated { product } => self.add_product(ProductV2::from(product))?,
            Record::ProductCreatedV2 { product } => self.add_product(product)?,
            Record::Reserved {
                product_id,
                order_id,
                lines,
            } => self.reserve(product_id, order_id, 0, lines)?,
            Record::ReservedFor {
                product_id,
                order_id,
                user_id,
                lines,
            } => self.reserve(product_id, order_id, user_id, lines)?,
            Record::Committed {
                product_id,
                order_id,
            } => {
                if !self.product(product_id)?.commit(order_id) {
                    return Err(format!("order {order_id} holds nothing to commit"));
                }
            }
            Record::Released {
                product_id,
                order_id,
            } => {
                if !self.product(product_id)?.release(order_id) {
                    return Err(format!("order {order_id} holds nothing to release"));
                }
            }
            Record::Restocked {
                product_id,
                option_id,
                quantity,
            } => {
                self.product(product_id)?
                    .restock(option_id, quantity)
                    .map_err(|e| e.to_string())?;
            }
            Record::CouponCreated { coupon } => {
                let coupon = coupon.into_state();
                if self.coupons.contains_key(&coupon.id) {
                    return Err(format!("coupon {} exists already", coupon.id));
                }
                above(&mut self.ids.next_coupon_id, coupon.id);
                self.coupons.insert(coupon.id, coupon);
            }
            Record::CouponIssued {
                coupon_id,
                user_id,
                issued_at,
            } => {
                if !self.users.contains_key(&user_id) {
                    return Err(format!("user {user_id} not found"));
                }
                let coupon = self
                    .coupons
                    .get_mut(&coupon_id)
                    .ok_or_else(|| format!("coupon {coupon_id} not found"))?;
                let issued = coupon
                    .issue(user_id, Timestamp(issued_at))
                    .map_err(|e| e.to_string())?;
                self.user(user_id)?.receive_coupon(issued);
            }
            Record::Delivered { order_id } => {
                self.data_platform.acknowledge(order_id);
            }
            Record::OrderIdsTaken { below } => {
                self.ids.next_order_id = self.ids.next_order_id.max(below);
            }
            Record::OrdersArchived { user_id, order_ids } => {
                let removed = self.user(user_id)?.archive(&order_ids)?;
                self.archived_orders = self.archived_orders.saturating_add(removed);
            }
        }
        Ok(())
    }

    fn add_product(&mut self, product: ProductV2) -> Result<(), String> {
        let product = product.into_state();
        if self.products.contains_key(&product.id) {
            return Err(format!("product {} exists already", product.id));
        }
        above(&mut self.ids.next_product_id, product.id);
        for option in &product.options {
            above(&mut self.ids.next_option_id, option.id);
        }
        self.products.insert(product.id, product);
        Ok(())
    }

    fn reserve(
        &mut self,
        product_id: ProductId,
        order_id: u64,
        user_id: UserId,
        lines: Vec<(u64, u64)>,
    ) -> Result<(), String> {
        above(&mut self.ids.next_order_id, order_id);
        self.product(product_id)?
            .reserve(order_id, user_id, stock_lines(lines))
            .map_err(|e| e.to_string())
    }

    fn user(&mut self, user_id: UserId) -> Result<&mut UserState, String> {
        self.users
            .get_mut(&user_id)
            .ok_or_else(|| format!("user {user_id} not found"))
    }

    fn product(&mut self, product_id: ProductId) -> Result<&mut ProductState, String> {
        self.products
            .get_mut(&product_id)
            .ok_or_else(|| format!("product {product_id} not found"))
    }

    /// The records that finish what a crash left half done, so that the state satisfies every
    /// invariant again. Owners are the truth: a buyer's order decides what happens to the
    /// stock it reserved. A reservation whose order no buyer has (the placement never
    /// finished, and its client never got a reply) or whose order EXPIRED or was CANCELLED is
    /// released; one whose order is PAID is committed. Everything else is recorded in one
    /// record (a payment with its sale and delivery, an issue with its holder), so nothing
    /// else can be half done. Applying the returned records changes nothing further.
    pub fn unfinished(&self) -> Vec<Record> {
        let mut buyers = BTreeMap::new();
        for user in self.users.values() {
            for (&order_id, order) in &user.orders {
                buyers.insert(order_id, order.status);
            }
        }
        let mut fixes = Vec::new();
        for product in self.products.values() {
            for &order_id in product.reservations.keys() {
                let status = buyers.get(&order_id).copied();
                // No buyer has it: the placement never finished.
                let status = status.unwrap_or(OrderStatus::Cancelled);
                fixes.extend(settling(product.id, order_id, status));
            }
        }
        fixes
    }

    /// The records that settle product `product_id`'s reservations of orders that ended at
    /// their buyer (committed when PAID, released when EXPIRED or CANCELLED). A reservation
    /// whose order no buyer has yet is left: its placement may still be on its way.
    pub fn ended_reservations(&self, product_id: ProductId) -> Vec<Record> {
        let Some(product) = self.products.get(&product_id) else {
            return Vec::new();
        };
        let buyer = |order_id, user_id| {
            let user: &UserState = self.users.get(&user_id)?;
            user.orders.get(&order_id).map(|order| order.status)
        };
        product
            .reservations
            .iter()
            .filter_map(|(&order_id, reservation)| {
                let status = buyer(order_id, reservation.user_id)?;
                settling(product_id, order_id, status)
            })
            .collect()
    }
}

/// The record that settles a reservation of an order in `status`: `None` while it is PENDING.
fn settling(product_id: ProductId, order_id: u64, status: OrderStatus) -> Option<Record> {
    match status {
        OrderStatus::Pending => None,
        OrderStatus::Paid => Some(Record::Committed {
            product_id,
            order_id,
        }),
        OrderStatus::Expired | OrderStatus::Cancelled => Some(Record::Released {
            product_id,
            order_id,
        }),
    }
}
