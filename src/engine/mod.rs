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

use std::sync::{Arc, Weak};
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, Message, RpcReplyPort};

use crate::archive::Archive;
use crate::audit::{AuditReport, audit, audit_with_archive};
use crate::clock::{Clock, Timestamp};
use crate::config::Limits;
use crate::domain::coupon::CouponState;
use crate::domain::product::ProductState;
use crate::domain::state::EngineState;
use crate::domain::user::UserState;
use crate::error::EngineError;
use crate::journal::Journal;
use crate::kernel::actors::coupon::{CouponActor, CouponMessage};
use crate::kernel::actors::data_platform::{DataPlatformActor, DataPlatformMessage, Sink};
use crate::kernel::actors::order_supervisor::{OrderSupervisor, SupervisorMessage};
use crate::kernel::actors::product::{ProductActor, ProductMessage, StockBoard};
use crate::kernel::actors::sales::{SalesActor, SalesMessage};
use crate::kernel::actors::user::{UserActor, UserMessage};
use crate::kernel::actors::{Links, Recorder};
use crate::kernel::directory::{
    Activate, Directory, Passivation, ProductEntry, Resident, Undelivered, UserEntry,
};
use crate::kernel::gate::Gate;
use crate::kernel::supervision::{Panics, Supervision};
use crate::metrics::{Attempt, JournalTotals, Metrics, Readings};
use crate::model::{OrderId, OrderStatus, UserId};
use crate::snapshot::SnapshotInfo;
use crate::store::Flushed;
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
    /// When entity actors stop (`actors.passivate_after`, `actors.max_running`).
    pub passivation: Passivation,
    /// A test double that makes entity actors' handlers panic (`src/kernel/supervision.rs`);
    /// `None` everywhere but in tests.
    pub panics: Option<Panics>,
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
            passivation: Passivation::default(),
            panics: None,
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    links: Arc<Links>,
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
    /// The task that passivates idle actors (`Directory::sweeper`).
    sweeper: tokio::task::JoinHandle<()>,
}

fn spawn_failed(error: impl std::fmt::Display) -> EngineError {
    EngineError::Unavailable(format!("could not start an actor: {error}"))
}

impl Engine {
    /// Starts the engine on `state`: every user, product and coupon passive (an actor starts
    /// with its first message), and the deadline of each PENDING order re-armed (those
    /// already past it expire at once).
    pub async fn start(
        config: EngineConfig,
        clock: Clock,
        state: &EngineState,
    ) -> Result<Engine, EngineError> {
        let (sales, _) = Actor::spawn(None, SalesActor, state.sales.clone())
            .await
            .map_err(spawn_failed)?;
        let recorder = Recorder::new(config.journal.clone(), config.panics.clone());
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
        let (data_platform, _) = Actor::spawn(None, data_platform, state.data_platform.clone())
            .await
            .map_err(spawn_failed)?;
        let directory = Arc::new(Directory::new(
            config.passivation,
            config.call_timeout,
            config.metrics.clone(),
            state.users.len(),
        ));
        let gate = Arc::new(Gate::default());
        let supervisor = OrderSupervisor {
            directory: directory.clone(),
            gate: gate.clone(),
            clock,
            metrics: config.metrics.clone(),
        };
        let (supervisor, _) = Actor::spawn(None, supervisor, ())
            .await
            .map_err(spawn_failed)?;
        let links = Arc::new(Links {
            directory: directory.clone(),
            gate,
            sales,
            deadlines: supervisor.clone(),
            data_platform,
            clock,
            recorder,
            limits: config.limits,
            call_timeout: config.call_timeout,
            ended: ended_sender,
            archived_orders: state.archived_orders.into(),
            metrics: config.metrics.clone(),
            supervision: Arc::new(Supervision::new(
                config.journal.clone(),
                config.metrics.clone(),
                config.panics.clone(),
            )),
        });
        directory.set_activate(Box::new(Spawner {
            links: Arc::downgrade(&links),
        }));
        let sweeper = tokio::spawn(Directory::sweeper(Arc::downgrade(&directory)));
        let engine = Engine {
            inner: Arc::new(Inner {
                links,
                order_expiry: config.order_expiry,
                ids: Ids::new(state.fitted_counters()),
                archive: std::sync::RwLock::new(config.archive.clone()),
                archivist: std::sync::Mutex::new(None),
                stop_archivist: Arc::new(tokio::sync::Notify::new()),
                creation: tokio::sync::Mutex::new(()),
                sweeper,
            }),
        };
        let products = state.products.values().cloned().map(ProductEntry::new);
        directory.insert_products(products.collect());
        for coupon in state.coupons.values() {
            directory.insert_coupon(coupon.clone());
        }
        let ended: Vec<(UserId, OrderId)> = state
            .users
            .values()
            .flat_map(|user| user.orders.values())
            .filter(|order| order.status != OrderStatus::Pending)
            .map(|order| (order.user_id, order.order_id))
            .collect();
        engine.add_users(&state.users)?;
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

    /// Where every user, product and coupon is (running or passive); tests and benchmarks
    /// read its counts.
    pub fn directory(&self) -> &Directory {
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
        let (activations, passivations) = self.directory().activations();
        let readings = Readings {
            running_actors: (self.directory().running_count() + SERVICE_ACTORS) as u64,
            activations,
            passivations,
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

    /// Asks entity `id` (a user, product or coupon: the message says which kind), starting its
    /// actor if it is passive, and waits for the reply, at most `call_timeout`. `unknown` is
    /// the answer when there is no such entity.
    async fn ask<M: Resident, R: Send + 'static>(
        &self,
        id: u64,
        unknown: EngineError,
        message: impl FnOnce(RpcReplyPort<R>) -> M,
    ) -> Result<R, EngineError> {
        match self.directory().ask(id, message).await {
            Ok(reply) => Ok(reply),
            Err(Undelivered::Unknown) => Err(unknown),
            Err(Undelivered::Stopped) => {
                tracing::error!(kind = ?M::KIND, id, "actor is gone");
                Err(EngineError::Unavailable("an actor has stopped".into()))
            }
            Err(Undelivered::TimedOut) => {
                tracing::error!(kind = ?M::KIND, id, "actor call timed out");
                Err(EngineError::Unavailable(
                    "an actor did not answer in time".into(),
                ))
            }
        }
    }

    /// Asks one of the engine's own actors (supervisor, sales, data platform) and waits for
    /// its reply, at most `call_timeout`.
    async fn ask_actor<M: Message, R: Send + 'static>(
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

    /// Registers every user (`add_user`), on as many threads as there are cores: at ten
    /// million users this is seconds of map inserts, each a cache miss, which overlap well.
    fn add_users(
        &self,
        users: &std::collections::BTreeMap<UserId, UserState>,
    ) -> Result<(), EngineError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = users.len().div_ceil(threads).max(1);
        let bounds: Vec<UserId> = users.keys().step_by(per_thread).copied().collect();
        std::thread::scope(|scope| {
            let parts: Vec<_> = bounds
                .iter()
                .enumerate()
                .map(|(index, &from)| {
                    let part = match bounds.get(index + 1) {
                        Some(&to) => users.range(from..to),
                        None => users.range(from..),
                    };
                    scope.spawn(move || { part }.try_for_each(|(_, user)| self.add_user(user)))
                })
                .collect();
            parts.into_iter().try_for_each(|part| {
                part.join()
                    .unwrap_or_else(|_| Err(EngineError::Unavailable("start-up failed".into())))
            })
        })
    }

    /// Registers a passive user and what the engine keeps of its orders: who bought each, and
    /// the deadlines of the PENDING ones.
    fn add_user(&self, state: &UserState) -> Result<(), EngineError> {
        let id = state.id;
        if !self.directory().insert_user(id, UserEntry::new(state)) {
            return Err(EngineError::UserExists(id));
        }
        for order in state.orders.values() {
            self.directory().insert_order(order.order_id, id);
            if order.status == OrderStatus::Pending {
                self.arm(order.order_id, id, order.expires_at);
            }
        }
        Ok(())
    }

    /// Watches a restored PENDING order's deadline (buyers arm the orders they place).
    fn arm(&self, order_id: u64, user_id: u64, expires_at: Timestamp) {
        let _ = self.links().deadlines.cast(SupervisorMessage::Arm {
            order_id,
            user_id,
            expires_at,
        });
    }

    /// Reads every actor's state at one consistent point (see `src/kernel/gate.rs`): new commands wait
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

    /// Flushes what changed since the last flush into the entity store (the periodic
    /// snapshot, see `src/store.rs`); nothing waits for it.
    pub async fn flush(&self) -> Result<Flushed, EngineError> {
        let Some(journal) = self.journal() else {
            return Err(EngineError::Snapshot("snapshots are not configured".into()));
        };
        journal
            .flush(self.clock().now())
            .await
            .map_err(|error| EngineError::Snapshot(error.to_string()))
    }

    /// Waits until every change appended so far — so every change a reply just received
    /// depends on — is durable (`Recorder::after_durable`). Immediate without a journal.
    async fn durable(&self) -> Result<(), EngineError> {
        let (sender, durable) = tokio::sync::oneshot::channel();
        self.links().recorder.after_durable(move || {
            let _ = sender.send(());
        });
        match tokio::time::timeout(self.links().call_timeout, durable).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(EngineError::Unavailable("the journal has stopped".into())),
            Err(_) => {
                tracing::error!("the journal did not make a change durable in time");
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
        let directory = self.directory();
        let users = self
            .read_all(directory.user_ids(), UserMessage::Read)
            .await?;
        let product_ids = directory.products().iter().map(|entry| entry.id).collect();
        let products = self.read_all(product_ids, ProductMessage::Read).await?;
        let coupons = self
            .read_all(directory.coupon_ids(), CouponMessage::Read)
            .await?;
        Ok(EngineState {
            users: users.into_iter().map(|user| (user.id, user)).collect(),
            products: products.into_iter().map(|p| (p.id, p)).collect(),
            coupons: coupons.into_iter().map(|c| (c.id, c)).collect(),
            sales: self
                .ask_actor(&self.links().sales, SalesMessage::Read)
                .await?,
            data_platform: self
                .ask_actor(&self.links().data_platform, DataPlatformMessage::Read)
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

    /// The state of every entity in `ids`, without starting any actor: a passive entity's
    /// from the directory, a running one's from its actor (`read`). Running actors are asked
    /// a few hundred at a time, so their reads overlap.
    async fn read_all<M: Resident>(
        &self,
        ids: Vec<u64>,
        read: fn(RpcReplyPort<M::State>) -> M,
    ) -> Result<Vec<M::State>, EngineError> {
        const AT_ONCE: usize = 256;
        let gone = |_| EngineError::Unavailable("an actor stopped while the state was read".into());
        let mut states = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(AT_ONCE) {
            let reads = chunk.iter().map(|&id| self.directory().read(id, read));
            for state in futures_util::future::join_all(reads).await {
                states.push(state.map_err(gone)?);
            }
        }
        Ok(states)
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
        self.ask_actor(&self.links().deadlines, SupervisorMessage::Watched)
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
        self.inner.sweeper.abort();
        self.directory().stop_all();
        self.links().deadlines.stop(None);
        self.links().sales.stop(None);
        self.links().data_platform.stop(None);
        drop(self.inner.archive.write().expect("not poisoned").take());
        if let Some(journal) = self.journal().cloned() {
            // Syncs what is left and joins the journal's threads: blocking work.
            let _ = tokio::task::spawn_blocking(move || journal.close()).await;
        }
    }
}

/// How the directory starts an entity's actor (`Activate`): spawned at once with the links
/// every actor shares, not awaited.
struct Spawner {
    /// Weak: the links own the directory, which owns this.
    links: Weak<Links>,
}

impl Spawner {
    fn links(&self) -> Result<Arc<Links>, String> {
        self.links
            .upgrade()
            .ok_or_else(|| "the engine has stopped".to_string())
    }
}

/// Spawns an actor without waiting for its `pre_start` (which only hands over its state).
fn spawn_now<A: Actor>(actor: A, state: A::Arguments) -> Result<ActorRef<A::Msg>, String> {
    ractor::ActorRuntime::spawn_instant(None, actor, state)
        .map(|(actor, _)| actor)
        .map_err(|error| error.to_string())
}

impl Activate for Spawner {
    fn user(&self, state: UserState) -> Result<ActorRef<UserMessage>, String> {
        let actor = UserActor {
            links: self.links()?,
            activated_at: tokio::time::Instant::now(),
        };
        spawn_now(actor, state)
    }

    fn product(
        &self,
        board: Arc<StockBoard>,
        state: ProductState,
    ) -> Result<ActorRef<ProductMessage>, String> {
        let links = self.links()?;
        let actor = ProductActor {
            board,
            recorder: links.recorder.clone(),
            directory: links.directory.clone(),
            supervision: links.supervision.clone(),
            activated_at: tokio::time::Instant::now(),
        };
        spawn_now(actor, state)
    }

    fn coupon(&self, state: CouponState) -> Result<ActorRef<CouponMessage>, String> {
        let links = self.links()?;
        let actor = CouponActor {
            recorder: links.recorder.clone(),
            directory: links.directory.clone(),
            supervision: links.supervision.clone(),
            activated_at: tokio::time::Instant::now(),
        };
        spawn_now(actor, state)
    }
}
