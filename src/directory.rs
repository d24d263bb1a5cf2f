//! The directory: the one place that maps ids to actor refs (users, products, coupons) and
//! orders to their buyer. Every lookup goes through here instead of ractor's global name
//! registry, whose names would collide between engines in parallel tests, and so that turning
//! on activation/passivation of idle actors later stays a change inside this file.
//!
//! The maps hold routing only; business state lives in the actors. Products also carry their
//! immutable catalog facts and the stock board their actor publishes, so listings need no
//! message per product.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use ractor::ActorRef;

use crate::actors::coupon::CouponMessage;
use crate::actors::product::{ProductMessage, StockBoard};
use crate::actors::user::UserMessage;
use crate::model::{
    CouponId, OptionId, OrderId, ProductId, ProductOptionView, ProductView, UserId, Won,
};

/// A product as the directory knows it: its actor, catalog facts and published stock.
pub struct ProductEntry {
    pub actor: ActorRef<ProductMessage>,
    pub id: ProductId,
    pub name: Arc<str>,
    pub category: String,
    pub price: Won,
    pub purchase_limit: Option<u64>,
    /// (id, name) of each option, in the order of the stock board.
    pub options: Vec<(OptionId, String)>,
    pub board: Arc<StockBoard>,
}

impl ProductEntry {
    pub fn view(&self) -> ProductView {
        let options = self
            .options
            .iter()
            .enumerate()
            .map(|(index, (id, name))| ProductOptionView {
                id: *id,
                name: name.clone(),
                stock: self.board.available(index),
            })
            .collect();
        ProductView {
            id: self.id,
            name: self.name.to_string(),
            category: self.category.clone(),
            price: self.price,
            options,
            purchase_limit: self.purchase_limit,
        }
    }

    pub fn has_option_named(&self, name: &str) -> bool {
        self.options.iter().any(|(_, option)| option == name)
    }

    pub fn in_stock(&self) -> bool {
        (0..self.options.len()).any(|index| self.board.available(index) > 0)
    }
}

/// A user as the directory knows it: its actor and the balance it publishes.
#[derive(Clone)]
pub struct UserEntry {
    pub actor: ActorRef<UserMessage>,
    /// Written only by the user's actor, after every change and before it replies.
    pub balance: Arc<AtomicU64>,
    /// The user's PENDING orders plus placements in flight: taken by the engine before it
    /// reserves stock (`take_pending_slot`), given back by the engine if the placement fails
    /// and by the user's actor when an order stops being PENDING.
    pub pending_orders: Arc<AtomicU64>,
}

/// Gives back one pending-order slot (never below zero).
pub fn release_slot(pending_orders: &AtomicU64) {
    let _ = pending_orders.fetch_update(Ordering::AcqRel, Ordering::Acquire, |pending| {
        pending.checked_sub(1)
    });
}

type Fx = rustc_hash::FxBuildHasher;

/// Users, coupons and order buyers are sharded concurrent maps (lookups on every request from
/// every core; a single lock's reader count would bounce between cores). Products are a
/// copy-on-write ordered map: looked up and listed constantly, added rarely.
#[derive(Default)]
pub struct Directory {
    users: DashMap<UserId, UserEntry, Fx>,
    products: ArcSwap<BTreeMap<ProductId, Arc<ProductEntry>>>,
    coupons: DashMap<CouponId, ActorRef<CouponMessage>, Fx>,
    order_buyers: DashMap<OrderId, UserId, Fx>,
}

impl Directory {
    /// How many entities have an actor: users, products and coupons.
    pub fn actor_count(&self) -> usize {
        self.users.len() + self.products.load().len() + self.coupons.len()
    }

    pub fn user(&self, id: UserId) -> Option<ActorRef<UserMessage>> {
        self.users.get(&id).map(|entry| entry.actor.clone())
    }

    /// The balance the user's actor last published.
    pub fn balance(&self, id: UserId) -> Option<u64> {
        self.users
            .get(&id)
            .map(|entry| entry.balance.load(Ordering::Acquire))
    }

    /// Takes one of the user's `limit` pending-order slots, atomically: concurrent placements
    /// of one user never get past the limit together. `None` for an unknown user, `Some(false)`
    /// when every slot is taken.
    pub fn take_pending_slot(&self, id: UserId, limit: u64) -> Option<bool> {
        let entry = self.users.get(&id)?;
        let taken =
            entry
                .pending_orders
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |pending| {
                    (pending < limit).then_some(pending + 1)
                });
        Some(taken.is_ok())
    }

    /// Gives back a slot taken by a placement that failed.
    pub fn release_pending_slot(&self, id: UserId) {
        if let Some(entry) = self.users.get(&id) {
            release_slot(&entry.pending_orders);
        }
    }

    /// Registers a user; false if the id is taken.
    pub fn insert_user(&self, id: UserId, entry: UserEntry) -> bool {
        match self.users.entry(id) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(vacant) => {
                vacant.insert(entry);
                true
            }
        }
    }

    /// Every user, by id.
    pub fn users(&self) -> Vec<(UserId, ActorRef<UserMessage>)> {
        let mut users: Vec<_> = self
            .users
            .iter()
            .map(|entry| (*entry.key(), entry.actor.clone()))
            .collect();
        users.sort_unstable_by_key(|(id, _)| *id);
        users
    }

    pub fn product(&self, id: ProductId) -> Option<Arc<ProductEntry>> {
        self.products.load().get(&id).cloned()
    }

    pub fn insert_product(&self, entry: ProductEntry) {
        let entry = Arc::new(entry);
        self.products.rcu(|products| {
            let mut products = BTreeMap::clone(products);
            products.insert(entry.id, entry.clone());
            products
        });
    }

    /// Every product, by id.
    pub fn products(&self) -> Vec<Arc<ProductEntry>> {
        self.products.load().values().cloned().collect()
    }

    pub fn coupon(&self, id: CouponId) -> Option<ActorRef<CouponMessage>> {
        self.coupons.get(&id).map(|coupon| coupon.clone())
    }

    pub fn insert_coupon(&self, id: CouponId, actor: ActorRef<CouponMessage>) {
        self.coupons.insert(id, actor);
    }

    pub fn coupons(&self) -> Vec<ActorRef<CouponMessage>> {
        let mut coupons: Vec<_> = self
            .coupons
            .iter()
            .map(|entry| (*entry.key(), entry.value().clone()))
            .collect();
        coupons.sort_unstable_by_key(|(id, _)| *id);
        coupons.into_iter().map(|(_, actor)| actor).collect()
    }

    pub fn buyer_of(&self, order_id: OrderId) -> Option<UserId> {
        self.order_buyers.get(&order_id).map(|buyer| *buyer)
    }

    pub fn insert_order(&self, order_id: OrderId, user_id: UserId) {
        self.order_buyers.insert(order_id, user_id);
    }

    /// Forgets an archived order: its reads go to the archive.
    pub fn remove_order(&self, order_id: OrderId) {
        self.order_buyers.remove(&order_id);
    }
}
