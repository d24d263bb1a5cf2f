//! The directory: the one place that maps ids to actor refs (users, products, coupons) and
//! orders to their buyer. Every lookup goes through here instead of ractor's global name
//! registry, whose names would collide between engines in parallel tests, and so that turning
//! on activation/passivation of idle actors later stays a change inside this file.
//!
//! The maps hold routing only; business state lives in the actors. Products also carry their
//! immutable catalog facts and the stock board their actor publishes, so listings need no
//! message per product.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

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
    pub name: String,
    pub category: String,
    pub price: Won,
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
            name: self.name.clone(),
            category: self.category.clone(),
            price: self.price,
            options,
        }
    }

    pub fn has_option_named(&self, name: &str) -> bool {
        self.options.iter().any(|(_, option)| option == name)
    }

    pub fn in_stock(&self) -> bool {
        (0..self.options.len()).any(|index| self.board.available(index) > 0)
    }
}

#[derive(Default)]
pub struct Directory {
    users: RwLock<HashMap<UserId, ActorRef<UserMessage>>>,
    products: RwLock<BTreeMap<ProductId, Arc<ProductEntry>>>,
    coupons: RwLock<BTreeMap<CouponId, ActorRef<CouponMessage>>>,
    order_buyers: RwLock<HashMap<OrderId, UserId>>,
}

// A poisoned lock means a thread panicked while inserting into a map; the maps themselves are
// still consistent (each insert is one call), so keep serving.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Directory {
    pub fn user(&self, id: UserId) -> Option<ActorRef<UserMessage>> {
        read(&self.users).get(&id).cloned()
    }

    /// Registers a user; false if the id is taken.
    pub fn insert_user(&self, id: UserId, actor: ActorRef<UserMessage>) -> bool {
        let mut users = write(&self.users);
        if users.contains_key(&id) {
            return false;
        }
        users.insert(id, actor);
        true
    }

    pub fn users(&self) -> Vec<(UserId, ActorRef<UserMessage>)> {
        let mut users: Vec<_> = read(&self.users)
            .iter()
            .map(|(id, actor)| (*id, actor.clone()))
            .collect();
        users.sort_unstable_by_key(|(id, _)| *id);
        users
    }

    pub fn user_count(&self) -> usize {
        read(&self.users).len()
    }

    pub fn product(&self, id: ProductId) -> Option<Arc<ProductEntry>> {
        read(&self.products).get(&id).cloned()
    }

    pub fn insert_product(&self, entry: ProductEntry) {
        write(&self.products).insert(entry.id, Arc::new(entry));
    }

    /// Every product, by id.
    pub fn products(&self) -> Vec<Arc<ProductEntry>> {
        read(&self.products).values().cloned().collect()
    }

    pub fn coupon(&self, id: CouponId) -> Option<ActorRef<CouponMessage>> {
        read(&self.coupons).get(&id).cloned()
    }

    pub fn insert_coupon(&self, id: CouponId, actor: ActorRef<CouponMessage>) {
        write(&self.coupons).insert(id, actor);
    }

    pub fn coupons(&self) -> Vec<ActorRef<CouponMessage>> {
        read(&self.coupons).values().cloned().collect()
    }

    pub fn buyer_of(&self, order_id: OrderId) -> Option<UserId> {
        read(&self.order_buyers).get(&order_id).copied()
    }

    pub fn insert_order(&self, order_id: OrderId, user_id: UserId) {
        write(&self.order_buyers).insert(order_id, user_id);
    }
}
