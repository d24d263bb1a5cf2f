//! The directory: the one place that knows where each user, product and coupon is — its actor
//! when it runs, its state when it is passive (`residence.rs`) — and which user bought each
//! order. Every message to an entity goes through here (`Directory::send`), never through
//! ractor's global name registry, whose names would collide between engines in parallel
//! tests. Activation and passivation live here and in the engine's `Activate` (how an actor is
//! spawned); the use cases only name the entity they message.
//!
//! Entries also hold what is published for reads that must not start an actor: a user's
//! balance and pending-order count, a product's catalog facts and stock board.

mod residence;

pub use residence::{Key, Kind, Passivation, Resident, Route, Undelivered};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use ractor::{ActorId, ActorRef};

use crate::domain::coupon::CouponState;
use crate::domain::product::ProductState;
use crate::domain::user::{PassiveUser, UserState};
use crate::kernel::actors::coupon::CouponMessage;
use crate::kernel::actors::product::{ProductMessage, StockBoard};
use crate::kernel::actors::user::UserMessage;
use crate::metrics::Metrics;
use crate::model::{
    CouponId, OptionId, OrderId, OrderStatus, ProductId, ProductOptionView, ProductView, UserId,
    Won,
};
use residence::Residence;

/// How the directory starts an entity's actor from its state: spawned, not awaited (it is
/// called under the entry's lock). The engine implements it (`src/engine/mod.rs`). The actor
/// reports to `Directory::activated` from its `pre_start`, with the moment it was asked for.
pub trait Activate: Send + Sync {
    fn user(&self, state: UserState) -> Result<ActorRef<UserMessage>, String>;
    fn product(
        &self,
        board: Arc<StockBoard>,
        state: ProductState,
    ) -> Result<ActorRef<ProductMessage>, String>;
    fn coupon(&self, state: CouponState) -> Result<ActorRef<CouponMessage>, String>;
}

/// A product as the directory knows it: catalog facts, published stock, and where it is.
pub struct ProductEntry {
    pub id: ProductId,
    pub name: Arc<str>,
    pub category: String,
    pub price: Won,
    pub purchase_limit: Option<u64>,
    /// (id, name) of each option, in the order of the stock board.
    pub options: Vec<(OptionId, String)>,
    pub board: Arc<StockBoard>,
    residence: RwLock<Residence<ProductMessage, ProductState>>,
}

impl ProductEntry {
    /// A passive product.
    pub fn new(state: ProductState) -> ProductEntry {
        ProductEntry {
            id: state.id,
            name: state.name.clone(),
            category: state.category.clone(),
            price: state.price,
            purchase_limit: state.purchase_limit,
            options: state
                .options
                .iter()
                .map(|option| (option.id, option.name.clone()))
                .collect(),
            board: Arc::new(StockBoard::new(&state)),
            residence: RwLock::new(Residence::Passive(state)),
        }
    }

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

/// A user as the directory knows it: the balance and pending-order count it publishes, and
/// where it is. A passive user with no orders or coupons is this and its key, nothing more.
pub struct UserEntry {
    /// Written only by the user's actor, after every change and before it replies; while the
    /// user is passive, its balance.
    balance: AtomicU64,
    /// The user's pending-order slots (`Slots`). Written only by the user's actor: taken when
    /// it starts a placement (`take_pending_slot`), kept by the order once placed, given back
    /// when the placement is refused or an order stops being PENDING. It lives here, not in
    /// the actor's state, so a placement in flight keeps its slot across a passivation.
    pending_orders: AtomicU64,
    residence: Residence<UserMessage, PassiveUser>,
}

impl UserEntry {
    /// A passive user with a copy of `state` (only its orders and coupons take any copying).
    /// Its pending-order count is counted from the orders here, once; afterwards the atomic is
    /// the count (a placement in flight holds a slot before its order exists).
    pub fn new(state: &UserState) -> UserEntry {
        let pending = state.orders.values();
        let pending = pending.filter(|o| o.status == OrderStatus::Pending).count() as u64;
        let (balance, passive) = PassiveUser::from_state(state.clone());
        UserEntry {
            balance: AtomicU64::new(balance),
            pending_orders: AtomicU64::new(Slots::packed(0, pending)),
            residence: Residence::Passive(passive),
        }
    }
}

/// A user's pending-order slots, packed in one `u64` so they change together atomically: the
/// slots taken (its PENDING orders plus its placements in flight) in the low 32 bits, the
/// placements in flight in the high 32 bits. Keeping the placements apart lets a restore count
/// the slots again from the orders (`Directory::recount_pending_slots`).
struct Slots {
    placing: u64,
    taken: u64,
}

impl Slots {
    const HALF: u64 = u32::MAX as u64;

    /// Packed; each part saturates at `u32::MAX` (far above any pending-order limit).
    fn packed(placing: u64, taken: u64) -> u64 {
        (placing.min(Slots::HALF) << 32) | taken.min(Slots::HALF)
    }

    fn of(packed: u64) -> Slots {
        Slots {
            placing: packed >> 32,
            taken: packed & Slots::HALF,
        }
    }
}

type Fx = rustc_hash::FxBuildHasher;

/// Users, coupons and order buyers are sharded concurrent maps (lookups on every request from
/// every core; a single lock's reader count would bounce between cores). Products are a
/// copy-on-write ordered map: looked up and listed constantly, added rarely.
pub struct Directory {
    users: DashMap<UserId, UserEntry, Fx>,
    products: ArcSwap<BTreeMap<ProductId, Arc<ProductEntry>>>,
    coupons: DashMap<CouponId, Residence<CouponMessage, CouponState>, Fx>,
    order_buyers: DashMap<OrderId, UserId, Fx>,
    activate: OnceLock<Box<dyn Activate>>,
    passivation: Passivation,
    /// How long a sender waits for a passivating actor to hand its state back.
    call_timeout: Duration,
    /// Every running entity actor, with the time of its last message (for the sweep).
    running: Mutex<rustc_hash::FxHashMap<Key, Arc<AtomicU64>>>,
    /// How many of those are passivating.
    passivating: std::sync::atomic::AtomicUsize,
    /// When the directory was made: the origin of `now_ms`.
    born: tokio::time::Instant,
    /// Actors started and stopped so far.
    activations: AtomicU64,
    passivations: AtomicU64,
    /// Notified whenever an actor hands its state back.
    passivated: tokio::sync::Notify,
    /// Notified when more than `max_running` actors run.
    over_cap: Arc<tokio::sync::Notify>,
    /// Set when the engine stops: no actor starts any more.
    closed: std::sync::atomic::AtomicBool,
    /// Where activation latency is recorded.
    metrics: Arc<Metrics>,
}

impl Directory {
    /// A directory sized for `users` users (growing a map of millions costs a copy of it).
    pub fn new(
        passivation: Passivation,
        call_timeout: Duration,
        metrics: Arc<Metrics>,
        users: usize,
    ) -> Directory {
        Directory {
            users: DashMap::with_capacity_and_hasher(users, Fx::default()),
            products: ArcSwap::default(),
            coupons: DashMap::default(),
            order_buyers: DashMap::default(),
            activate: OnceLock::new(),
            passivation,
            call_timeout,
            running: Mutex::default(),
            passivating: Default::default(),
            born: tokio::time::Instant::now(),
            activations: AtomicU64::new(0),
            passivations: AtomicU64::new(0),
            passivated: tokio::sync::Notify::new(),
            over_cap: Arc::new(tokio::sync::Notify::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
            metrics,
        }
    }

    /// Tells the directory how to start actors; once, before any message is sent.
    pub fn set_activate(&self, activate: Box<dyn Activate>) {
        if self.activate.set(activate).is_err() {
            tracing::error!("the directory's activation was set twice; the first one stays");
        }
    }

    /// An actor asked for at `since` has started (its `pre_start`).
    pub fn activated(&self, since: tokio::time::Instant) {
        let took = since.elapsed().as_secs_f64();
        self.metrics.actor_activation_seconds.record(took);
    }

    fn activator(&self) -> Result<&dyn Activate, String> {
        self.activate
            .get()
            .map(|activate| activate.as_ref())
            .ok_or_else(|| "the directory cannot start actors yet".to_string())
    }

    /// How many users, products and coupons there are.
    pub fn entity_count(&self) -> usize {
        self.users.len() + self.products.load().len() + self.coupons.len()
    }

    pub fn has_user(&self, id: UserId) -> bool {
        self.users.contains_key(&id)
    }

    /// The user's balance as its actor last published it: no message, no activation.
    pub fn balance(&self, id: UserId) -> Option<u64> {
        self.users
            .get(&id)
            .map(|entry| entry.balance.load(Ordering::Acquire))
    }

    /// Publishes the balance of user `id` (its actor, after every change).
    pub fn publish_balance(&self, id: UserId, balance: Won) {
        if let Some(entry) = self.users.get(&id) {
            entry.balance.store(balance, Ordering::Release);
        }
    }

    /// Takes one of the user's `limit` pending-order slots for a placement, atomically:
    /// concurrent placements of one user never get past the limit together. `None` for an
    /// unknown user, `Some(false)` when every slot is taken.
    pub fn take_pending_slot(&self, id: UserId, limit: u64) -> Option<bool> {
        let taken = self.update_slots(id, |Slots { placing, taken }| {
            (taken < limit).then(|| Slots::packed(placing + 1, taken + 1))
        })?;
        Some(taken.is_ok())
    }

    /// A placement became an order, which keeps its slot.
    pub fn placement_placed(&self, id: UserId) {
        let _ = self.update_slots(id, |Slots { placing, taken }| {
            Some(Slots::packed(placing.checked_sub(1)?, taken))
        });
    }

    /// A placement was refused: its slot is free again.
    pub fn placement_refused(&self, id: UserId) {
        let _ = self.update_slots(id, |Slots { placing, taken }| {
            Some(Slots::packed(
                placing.checked_sub(1)?,
                taken.checked_sub(1)?,
            ))
        });
    }

    /// An order stopped being PENDING: its slot is free again (never below zero).
    pub fn release_pending_slot(&self, id: UserId) {
        let _ = self.update_slots(id, |Slots { placing, taken }| {
            Some(Slots::packed(placing, taken.checked_sub(1)?))
        });
    }

    /// Counts the user's slots again after a restore: its `pending` PENDING orders plus its
    /// placements in flight.
    pub fn recount_pending_slots(&self, id: UserId, pending: u64) {
        let _ = self.update_slots(id, |Slots { placing, .. }| {
            Some(Slots::packed(placing, pending + placing))
        });
    }

    /// Updates user `id`'s slots atomically; `None` for an unknown user, `Err` when `update`
    /// refused.
    fn update_slots(
        &self,
        id: UserId,
        mut update: impl FnMut(Slots) -> Option<u64>,
    ) -> Option<Result<u64, u64>> {
        let entry = self.users.get(&id)?;
        let slots = &entry.pending_orders;
        let updated = slots.fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
            update(Slots::of(packed))
        });
        Some(updated)
    }

    /// Registers a passive user; false if the id is taken.
    pub fn insert_user(&self, id: UserId, entry: UserEntry) -> bool {
        match self.users.entry(id) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(vacant) => {
                vacant.insert(entry);
                true
            }
        }
    }

    /// Every user id, ascending.
    pub fn user_ids(&self) -> Vec<UserId> {
        sorted_keys(&self.users)
    }

    /// Takes back the state of user `state.id`'s actor `actor`, which just stopped.
    pub fn user_stopped(&self, actor: ActorId, state: UserState) {
        let id = state.id;
        let Some(mut entry) = self.users.get_mut(&id) else {
            return;
        };
        let (balance, passive) = PassiveUser::from_state(state);
        entry.balance.store(balance, Ordering::Release);
        let passivating = entry.residence.passivated(actor, passive);
        self.stopped((Kind::User, id), passivating);
    }

    pub fn product(&self, id: ProductId) -> Option<Arc<ProductEntry>> {
        self.products.load().get(&id).cloned()
    }

    /// Registers passive products (one copy of the map for all of them).
    pub fn insert_products(&self, entries: Vec<ProductEntry>) {
        let entries: Vec<_> = entries.into_iter().map(Arc::new).collect();
        self.products.rcu(|products| {
            let mut products = BTreeMap::clone(products);
            for entry in &entries {
                products.insert(entry.id, entry.clone());
            }
            products
        });
    }

    /// Every product, by id.
    pub fn products(&self) -> Vec<Arc<ProductEntry>> {
        self.products.load().values().cloned().collect()
    }

    /// Takes back the state of product `state.id`'s actor `actor`, which just stopped.
    pub fn product_stopped(&self, actor: ActorId, state: ProductState) {
        let id = state.id;
        let Some(product) = self.product(id) else {
            return;
        };
        let mut residence = product.residence.write().expect("not poisoned");
        let passivating = residence.passivated(actor, state);
        self.stopped((Kind::Product, id), passivating);
    }

    pub fn has_coupon(&self, id: CouponId) -> bool {
        self.coupons.contains_key(&id)
    }

    /// Registers a passive coupon.
    pub fn insert_coupon(&self, state: CouponState) {
        self.coupons.insert(state.id, Residence::Passive(state));
    }

    /// Every coupon id, ascending.
    pub fn coupon_ids(&self) -> Vec<CouponId> {
        sorted_keys(&self.coupons)
    }

    /// Takes back the state of coupon `state.id`'s actor `actor`, which just stopped.
    pub fn coupon_stopped(&self, actor: ActorId, state: CouponState) {
        let id = state.id;
        let Some(mut residence) = self.coupons.get_mut(&id) else {
            return;
        };
        let passivating = residence.passivated(actor, state);
        self.stopped((Kind::Coupon, id), passivating);
    }

    /// Stops every running entity actor at once (the engine is stopping): messages still in
    /// their mailboxes are dropped, and later sends answer `Undelivered::Stopped`.
    pub fn stop_all(&self) {
        self.closed.store(true, Ordering::Release);
        for (kind, id) in self.running() {
            match kind {
                Kind::User => stop(
                    self.users
                        .get(&id)
                        .and_then(|e| e.residence.actor().cloned()),
                ),
                Kind::Product => stop(self.product(id).and_then(|p| {
                    let residence = p.residence.read().expect("not poisoned");
                    residence.actor().cloned()
                })),
                Kind::Coupon => stop(self.coupons.get(&id).and_then(|r| r.actor().cloned())),
            }
        }
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

fn sorted_keys<V>(map: &DashMap<u64, V, Fx>) -> Vec<u64> {
    let mut keys: Vec<u64> = map.iter().map(|entry| *entry.key()).collect();
    keys.sort_unstable();
    keys
}

fn stop<M: ractor::Message>(actor: Option<ActorRef<M>>) {
    if let Some(actor) = actor {
        actor.stop(None);
    }
}

impl Resident for UserMessage {
    type State = UserState;
    const KIND: Kind = Kind::User;

    fn route(directory: &Directory, id: u64, activate: bool) -> Option<Route<Self, UserState>> {
        {
            let entry = directory.users.get(&id)?;
            let balance = entry.balance.load(Ordering::Acquire);
            let route = entry
                .residence
                .route(directory.now_ms(), activate, |passive| {
                    passive.to_state(id, balance)
                });
            if route.is_some() {
                return route;
            }
        }
        let mut entry = directory.users.get_mut(&id)?;
        let balance = entry.balance.load(Ordering::Acquire);
        Some(
            entry
                .residence
                .activate(directory, (Kind::User, id), |passive| {
                    directory.activator()?.user(passive.into_state(id, balance))
                }),
        )
    }

    fn passivate(directory: &Directory, id: u64, idle_before: Option<u64>) -> bool {
        let Some(mut entry) = directory.users.get_mut(&id) else {
            return false;
        };
        entry.residence.passivate(idle_before)
    }
}

impl Resident for ProductMessage {
    type State = ProductState;
    const KIND: Kind = Kind::Product;

    fn route(directory: &Directory, id: u64, activate: bool) -> Option<Route<Self, ProductState>> {
        let product = directory.product(id)?;
        {
            let residence = product.residence.read().expect("not poisoned");
            let route = residence.route(directory.now_ms(), activate, ProductState::clone);
            if route.is_some() {
                return route;
            }
        }
        let mut residence = product.residence.write().expect("not poisoned");
        Some(residence.activate(directory, (Kind::Product, id), |state| {
            directory.activator()?.product(product.board.clone(), state)
        }))
    }

    fn passivate(directory: &Directory, id: u64, idle_before: Option<u64>) -> bool {
        let Some(product) = directory.product(id) else {
            return false;
        };
        let mut residence = product.residence.write().expect("not poisoned");
        residence.passivate(idle_before)
    }
}

impl Resident for CouponMessage {
    type State = CouponState;
    const KIND: Kind = Kind::Coupon;

    fn route(directory: &Directory, id: u64, activate: bool) -> Option<Route<Self, CouponState>> {
        {
            let residence = directory.coupons.get(&id)?;
            let route = residence.route(directory.now_ms(), activate, CouponState::clone);
            if route.is_some() {
                return route;
            }
        }
        let mut residence = directory.coupons.get_mut(&id)?;
        Some(residence.activate(directory, (Kind::Coupon, id), |state| {
            directory.activator()?.coupon(state)
        }))
    }

    fn passivate(directory: &Directory, id: u64, idle_before: Option<u64>) -> bool {
        let Some(mut residence) = directory.coupons.get_mut(&id) else {
            return false;
        };
        residence.passivate(idle_before)
    }
}
