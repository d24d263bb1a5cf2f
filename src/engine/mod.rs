//! `Engine`: the one cloneable handle through which HTTP, the simulator and tests reach the
//! actors. One async fn per use case (in `shopping.rs` and `catalog.rs`); each admits itself
//! through the gate, looks actors up in the directory and asks them, with a timeout.
//!
//! This file starts the engine from an `EngineState`, reads a consistent state back out
//! (the admin audit) and stops it.

mod archiving;
mod catalog;

pub use archiving::archived_twice;
mod ids;
mod shopping;

pub use catalog::{
    NewCoupon, NewProduct, NewProductOption, PopularItem, ProductPage, ProductQuery, ProductSort,
};
pub use shopping::OrderLine;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, Message, RpcReplyPort};

use crate::actors::coupon::{CouponActor, CouponMessage, CouponState};
use crate::actors::data_platform::{DataPlatformActor, DataPlatformMessage, Sink};
use crate::actors::order_supervisor::{OrderSupervisor, SupervisorMessage};
use crate::actors::product::{ProductActor, ProductMessage, ProductState, StockBoard};
use crate::actors::sales::{SalesActor, SalesMessage};
use crate::actors::user::{UserActor, UserMessage, UserState};
use crate::actors::{Links, Recorder};
use crate::archive::Archive;
use crate::audit::{AuditReport, audit, audit_with_archive};
use crate::clock::{Clock, Timestamp};
use crate::config::Limits;
use crate::directory::{Directory, ProductEntry, UserEntry};
use crate::error::EngineError;
use crate::gate::Gate;
use crate::journal::Journal;
use crate::metrics::{Attempt, JournalTotals, Metrics, Readings};
use crate::model::{OrderId, OrderStatus, UserId};
use crate::snapshot::SnapshotInfo;
use crate::state::EngineState;
use ids::Ids;

/// How the engine behaves, independent of HTTP.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub limits: Limits,
    pub order_expiry: Duration,
    pub sink: Sink,
    /// How long a caller waits for an actor (or the journal) before answering 503.
    pub call_timeout: Duration,
    /// Where every change is recorded and snapshots are written from; `None` keeps the state
    /// in memory only (tests, the embedded simulator).
    pub journal: Option<Journal>,
    /// Where ended orders move `archive_after` after they ended; `None` keeps every order in
    /// memory.
    pub archive: Option<Archive>,
    pub archive_after: Duration,
    /// What `GET /metrics` shows; the journal records its timings here too.
    pub metrics: Arc<Metrics>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            limits: Limits::default(),
            order_expiry: Duration::from_secs(600),
            sink: Sink::Log,
            call_timeout: Duration::from_secs(5),
            journal: None,
            archive: None,
            archive_after: Duration::from_secs(60),
            metrics: Arc::default(),
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    links: Arc<Links>,
    supervisor: ActorRef<SupervisorMessage>,
    order_expiry: Duration,
    ids: Ids,
    /// Where ended orders go (taken at stop, which releases the store's lock), and the task
    /// that moves them there with what tells it to stop.
    archive: std::sync::RwLock<Option<Archive>>,
    archivist: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop_archivist: Arc<tokio::sync::Notify>,
    /// Admin creations run one at a time, so the record of a creation and the id it takes
    /// cannot be overtaken by a second creation of the same id.
    creation: tokio::sync::Mutex<()>,
}

fn spawn_failed(error: impl std::fmt::Display) -> EngineError {
    EngineError::Unavailable(format!("could not start an actor: {error}"))
}

impl Engine {
    /// Starts every actor from `state` and re-arms the deadline of each PENDING order (those
    /// already past it expire at once).
    pub async fn start(
        config: EngineConfig,
        clock: Clock,
        mut state: EngineState,
    ) -> Result<Engine, EngineError> {
        state.fit_counters();
        let (sales, _) = Actor::spawn(None, SalesActor, state.sales)
            .await
            .map_err(spawn_failed)?;
        let recorder = Recorder::new(config.journal.clone());
        let (ended_sender, ended_reports) = match &config.archive {
            Some(_) => {
                let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
                (Some(sender), Some(receiver))
            }
            None => (None, None),
        };
        let data_platform = DataPlatformActor {
            sink: config.sink,
            recorder: recorder.clone(),
            metrics: config.metrics.clone(),
        };
        let (data_platform, _) = Actor::spawn(None, data_platform, state.data_platform)
            .await
            .map_err(spawn_failed)?;
        let links = Arc::new(Links {
            directory: Arc::new(Directory::default()),
            gate: Arc::new(Gate::default()),
            sales,
            data_platform,
            clock,
            recorder,
            limits: config.limits,
            call_timeout: config.call_timeout,
            ended: ended_sender,
            archived_orders: state.archived_orders.into(),
            metrics: config.metrics.clone(),
        });
        let supervisor = OrderSupervisor {
            links: links.clone(),
        };
        let (supervisor, _) = Actor::spawn(None, supervisor, ())
            .await
            .map_err(spawn_failed)?;
        let engine = Engine {
            inner: Arc::new(Inner {
                links,
                supervisor,
                order_expiry: config.order_expiry,
                ids: Ids::new(state.ids),
                archive: std::sync::RwLock::new(config.archive.clone()),
                archivist: std::sync::Mutex::new(None),
                stop_archivist: Arc::new(tokio::sync::Notify::new()),
                creation: tokio::sync::Mutex::new(()),
            }),
        };
        for product in state.products.into_values() {
            engine.spawn_product(product).await?;
        }
        for coupon in state.coupons.into_values() {
            engine.spawn_coupon(coupon).await?;
        }
        let ended: Vec<(UserId, OrderId)> = state
            .users
            .values()
            .flat_map(|user| user.orders.values())
            .filter(|order| order.status != OrderStatus::Pending)
            .map(|order| (order.user_id, order.order_id))
            .collect();
        for user in state.users.into_values() {
            engine.spawn_user(user).await?;
        }
        engine.start_archivist(config.archive_after, ended_reports, ended);
        Ok(engine)
    }

    pub fn clock(&self) -> Clock {
        self.inner.links.clock
    }

    /// A new order id (see `ORDER_ID_BLOCK`).
    fn next_order_id(&self) -> OrderId {
        self.inner.ids.next_order(&self.links().recorder)
    }

    /// The journal changes are recorded in, if the engine has one.
    pub fn journal(&self) -> Option<&Journal> {
        self.links().recorder.journal()
    }

    fn links(&self) -> &Links {
        &self.inner.links
    }

    fn directory(&self) -> &Directory {
        &self.inner.links.directory
    }

    /// The text of `GET /metrics`: the counters as they stand, the gauges read now.
    pub fn metrics_text(&self) -> String {
        // The order supervisor, the sales statistics and the data platform.
        const SERVICE_ACTORS: usize = 3;
        let journal = self.journal().map(|journal| {
            let stats = journal.stats();
            JournalTotals {
                records: stats.records.load(std::sync::atomic::Ordering::Relaxed),
                bytes: stats.bytes.load(std::sync::atomic::Ordering::Relaxed),
                fsyncs: stats.fsyncs.load(std::sync::atomic::Ordering::Relaxed),
            }
        });
        let readings = Readings {
            running_actors: (self.directory().actor_count() + SERVICE_ACTORS) as u64,
            journal,
        };
        self.links().metrics.render(readings)
    }

    /// The engine's metrics, for the HTTP layer to count requests in.
    pub fn metrics(&self) -> &Metrics {
        &self.links().metrics
    }

    /// Counts the outcome of one attempt of `what` (see `Metrics::attempted`).
    fn count_attempt<T>(&self, what: Attempt, result: &Result<T, EngineError>) {
        let outcome = result.as_ref().map(|_| ()).map_err(|e| e.code().as_str());
        self.links().metrics.attempted(what, outcome);
    }

    /// Asks an actor and waits for its reply, at most `call_timeout`.
    async fn ask<M: Message, R: Send + 'static>(
        &self,
        actor: &ActorRef<M>,
        message: impl FnOnce(RpcReplyPort<R>) -> M,
    ) -> Result<R, EngineError> {
        match actor.call(message, Some(self.links().call_timeout)).await {
            Ok(CallResult::Success(reply)) => Ok(reply),
            Ok(CallResult::Timeout) => {
                tracing::error!(actor = %actor.get_id(), "actor call timed out");
                Err(EngineError::Unavailable(
                    "an actor did not answer in time".into(),
                ))
            }
            Ok(CallResult::SenderError) | Err(_) => {
                tracing::error!(actor = %actor.get_id(), "actor is gone");
                Err(EngineError::Unavailable("an actor has stopped".into()))
            }
        }
    }

    /// Starts a user actor and registers it; the user's PENDING orders get their deadlines.
    async fn spawn_user(&self, state: UserState) -> Result<(), EngineError> {
        let id = state.id;
        let pending: Vec<_> = state
            .orders
            .values()
            .filter(|order| order.status == OrderStatus::Pending)
            .map(|order| (order.order_id, order.expires_at))
            .collect();
        let order_ids: Vec<_> = state.orders.keys().copied().collect();
        let balance = Arc::new(AtomicU64::new(state.balance));
        let pending_orders = Arc::new(AtomicU64::new(pending.len() as u64));
        let actor = UserActor {
            links: self.inner.links.clone(),
            published_balance: balance.clone(),
            pending_orders: pending_orders.clone(),
        };
        let (user, _) = Actor::spawn(None, actor, state)
            .await
            .map_err(spawn_failed)?;
        let entry = UserEntry {
            actor: user.clone(),
            balance,
            pending_orders,
        };
        if !self.directory().insert_user(id, entry) {
            user.stop(None);
            return Err(EngineError::UserExists(id));
        }
        for order_id in order_ids {
            self.directory().insert_order(order_id, id);
        }
        for (order_id, expires_at) in pending {
            self.arm(order_id, id, expires_at);
        }
        Ok(())
    }

    async fn spawn_product(&self, state: ProductState) -> Result<Arc<ProductEntry>, EngineError> {
        let board = Arc::new(StockBoard::new(&state));
        let (id, name, category, price, purchase_limit) = (
            state.id,
            state.name.clone(),
            state.category.clone(),
            state.price,
            state.purchase_limit,
        );
        let options = state
            .options
            .iter()
            .map(|o| (o.id, o.name.clone()))
            .collect();
        let actor = ProductActor {
            board: board.clone(),
            recorder: self.links().recorder.clone(),
        };
        let (actor, _) = Actor::spawn(None, actor, state)
            .await
            .map_err(spawn_failed)?;
        let entry = ProductEntry {
            actor,
            id,
            name,
            category,
            price,
            purchase_limit,
            options,
            board,
        };
        self.directory().insert_product(entry);
        self.directory()
            .product(id)
            .ok_or_else(|| EngineError::Unavailable("product vanished".into()))
    }

    async fn spawn_coupon(
        &self,
        state: CouponState,
    ) -> Result<ActorRef<CouponMessage>, EngineError> {
        let id = state.id;
        let actor = CouponActor {
            recorder: self.links().recorder.clone(),
        };
        let (coupon, _) = Actor::spawn(None, actor, state)
            .await
            .map_err(spawn_failed)?;
        self.directory().insert_coupon(id, coupon.clone());
        Ok(coupon)
    }

    /// Drops a paid or cancelled order's deadline.
    fn disarm(&self, order_id: OrderId) {
        let _ = self
            .inner
            .supervisor
            .cast(SupervisorMessage::Disarm { order_id });
    }

    fn arm(&self, order_id: u64, user_id: u64, expires_at: Timestamp) {
        let _ = self.inner.supervisor.cast(SupervisorMessage::Arm {
            order_id,
            user_id,
            expires_at,
        });
    }

    /// Reads every actor's state at one consistent point (see `src/gate.rs`): new commands wait
    /// while it runs, in-flight ones finish first.
    pub async fn read_state(&self) -> Result<EngineState, EngineError> {
        let _closed = self.links().gate.close().await;
        self.read_state_while_closed().await
    }

    /// Writes a snapshot of the state after every change made so far (see
    /// `src/journal/mod.rs`): the journal's checkpointer writes it; nothing waits for it.
    pub async fn snapshot(&self) -> Result<SnapshotInfo, EngineError> {
        let Some(journal) = self.journal() else {
            return Err(EngineError::Snapshot("snapshots are not configured".into()));
        };
        journal
            .snapshot(self.clock().now())
            .await
            .map_err(|error| EngineError::Snapshot(error.to_string()))
    }

    /// Waits until every change appended so far — so every change a reply just received
    /// depends on — is durable. Immediate without a journal.
    async fn durable(&self) -> Result<(), EngineError> {
        let Some(journal) = self.journal() else {
            return Ok(());
        };
        let target = journal.appended();
        if journal.durable() >= target {
            return Ok(());
        }
        match tokio::time::timeout(self.links().call_timeout, journal.wait_durable(target)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(EngineError::Unavailable(error.to_string())),
            Err(_) => {
                tracing::error!(target, "the journal did not make a change durable in time");
                Err(EngineError::Unavailable(
                    "the journal did not make the change durable in time".into(),
                ))
            }
        }
    }

    /// `result`, once everything it depends on is durable.
    async fn once_durable<T>(&self, result: Result<T, EngineError>) -> Result<T, EngineError> {
        self.durable().await?;
        result
    }

    async fn read_state_while_closed(&self) -> Result<EngineState, EngineError> {
        let users = self.directory().users();
        let products = self.directory().products();
        let coupons = self.directory().coupons();
        let users = self
            .read_all(users.iter().map(|(_, user)| user), UserMessage::Read)
            .await?;
        let products = self
            .read_all(
                products.iter().map(|entry| &entry.actor),
                ProductMessage::Read,
            )
            .await?;
        let coupons = self.read_all(coupons.iter(), CouponMessage::Read).await?;
        Ok(EngineState {
            users: users.into_iter().map(|user| (user.id, user)).collect(),
            products: products.into_iter().map(|p| (p.id, p)).collect(),
            coupons: coupons.into_iter().map(|c| (c.id, c)).collect(),
            sales: self.ask(&self.links().sales, SalesMessage::Read).await?,
            data_platform: self
                .ask(&self.links().data_platform, DataPlatformMessage::Read)
                .await?,
            ids: self.inner.ids.counters(),
            // Read last: it may count an order archived after its user was read (the audit
            // then checks bounds), never miss one that is gone from a user read before.
            archived_orders: self
                .links()
                .archived_orders
                .load(std::sync::atomic::Ordering::SeqCst),
        })
    }

    /// Asks every actor at once, then collects the replies in order. Unlike `ask` in a loop,
    /// no timer is armed per actor (a reply already there needs none); the wait fails only if
    /// no reply arrives for `call_timeout`. With 100k actors this halves the read.
    async fn read_all<'a, M: Message, R: Send + 'static>(
        &self,
        actors: impl Iterator<Item = &'a ActorRef<M>>,
        message: impl Fn(RpcReplyPort<R>) -> M,
    ) -> Result<Vec<R>, EngineError> {
        let gone = || EngineError::Unavailable("an actor stopped while the state was read".into());
        let mut pending = Vec::new();
        for actor in actors {
            let (port, reply) = tokio::sync::oneshot::channel();
            actor.cast(message(port.into())).map_err(|_| gone())?;
            pending.push(reply);
        }
        let mut replies = Vec::with_capacity(pending.len());
        for reply in pending {
            match tokio::time::timeout(self.links().call_timeout, reply).await {
                Ok(Ok(state)) => replies.push(state),
                Ok(Err(_)) => return Err(gone()),
                Err(_) => {
                    return Err(EngineError::Unavailable(
                        "an actor did not answer in time".into(),
                    ));
                }
            }
        }
        Ok(replies)
    }

    /// Checks the invariants of docs/spec.md §5 over a consistent state.
    pub async fn audit(&self) -> Result<AuditReport, EngineError> {
        let state = self.read_state().await?;
        Ok(audit(&state, self.clock().now()))
    }

    /// The full audit: the state and every archived order, each running total matched against
    /// the orders exactly. Reads the whole archive.
    pub async fn audit_with_archive(&self) -> Result<AuditReport, EngineError> {
        let state = self.read_state().await?;
        let archived = self.archived_orders().await?;
        Ok(audit_with_archive(&state, &archived, self.clock().now()))
    }

    /// How many order deadlines the supervisor is watching (tests, metrics).
    pub async fn watched_deadlines(&self) -> Result<usize, EngineError> {
        self.ask(&self.inner.supervisor, SupervisorMessage::Watched)
            .await
    }

    /// Stops every actor, then the journal. Commands arriving afterwards answer 503.
    pub async fn stop(&self) {
        let _closed = self.links().gate.close().await;
        // The archivist finishes the batch it is moving; what it did not get to stays in
        // memory (and in the journal) and is moved after the next start.
        let archivist = self.inner.archivist.lock().expect("not poisoned").take();
        if let Some(archivist) = archivist {
            self.inner.stop_archivist.notify_one();
            let _ = archivist.await;
        }
        for (_, user) in self.directory().users() {
            user.stop(None);
        }
        for product in self.directory().products() {
            product.actor.stop(None);
        }
        for coupon in self.directory().coupons() {
            coupon.stop(None);
        }
        self.inner.supervisor.stop(None);
        self.links().sales.stop(None);
        self.links().data_platform.stop(None);
        drop(self.inner.archive.write().expect("not poisoned").take());
        if let Some(journal) = self.journal().cloned() {
            // Syncs what is left and joins the journal's threads: blocking work.
            let _ = tokio::task::spawn_blocking(move || journal.close()).await;
        }
    }
}
