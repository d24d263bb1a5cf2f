//! Virtual actors (docs/spec.md §3, `actors.passivate_after`; the plan and its races are in
//! docs/virtual-actors.md). Every user, product and coupon keeps its id and its state, but its
//! ractor actor runs only while it is in use. Where an entity is — its state in the directory,
//! or its actor — is its `Residence`:
//!
//! ```text
//!            a message for it                       its actor drained its mailbox
//! Passive ----------------------> Running ---------> Passivating -----------------> Passive
//!  (state)   (activated under      (actor)  idle, or   (mailbox      (post_stop hands
//!             the entry's lock)             evicted     closed)       the state back)
//! ```
//!
//! Why nothing is lost or applied twice:
//! - Activation happens under the entry's write lock, and takes the state out of the entry:
//!   two first messages find one `Passive`; the second sees `Running` and uses that actor.
//! - Passivation closes the actor's mailbox (ractor's `drain`) under the same lock that marks
//!   the entry `Passivating`. A message admitted before that is handled by the old actor (it
//!   drains its mailbox before it stops, with its state); a send after it is refused and the
//!   message comes back to its sender, who finds `Passivating`, waits for the state to come
//!   back, and starts the entity again. Each message is handled once, by the one actor that
//!   holds the state. Senders deliver one at a time, so a sender's messages keep their order.
//! - The state leaves the actor only in `post_stop`, after its last message.
//! - Passivation writes nothing to disk: it moves the state, it does not change it.
//!
//! Idle actors are found by a sweep (`Directory::sweep`, every quarter of `passivate_after`):
//! each message routed to an entity stamps the time on it; an actor unstamped for
//! `passivate_after` is passivated, so it stops between 1 and 1.25 times `passivate_after`
//! after its last message. Over `max_running` running actors, the least recently used are
//! passivated at once (`Directory::evict`), idle or not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ractor::{ActorId, ActorRef, Message, MessagingErr};

use super::Directory;
use crate::config::ActorSettings;

/// Sweeps per `passivate_after`.
const SWEEPS_PER_IDLE: u32 = 4;

/// How long the sweeper waits between evictions while over the cap (actors it told to stop
/// are handing their state back; actors still starting cannot be told yet).
const EVICTION_RETRY: Duration = Duration::from_millis(1);
const EVICTION_RETRIES: usize = 1_000;

/// When actors stop (`actors.passivate_after`, `actors.max_running`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Passivation {
    /// An actor with no message for this long stops. Zero: after every message (the most
    /// aggressive setting, for tests).
    pub after: Duration,
    /// At most this many entity actors run; above it the least recently used stop.
    pub max_running: usize,
}

impl Default for Passivation {
    fn default() -> Self {
        Passivation::from(&ActorSettings::default())
    }
}

impl From<&ActorSettings> for Passivation {
    fn from(settings: &ActorSettings) -> Passivation {
        Passivation {
            after: settings.passivate_after,
            max_running: settings.max_running,
        }
    }
}

impl Passivation {
    /// How often the sweep runs; `None` when every message passivates anyway.
    pub fn sweep_every(&self) -> Option<Duration> {
        let every = self.after / SWEEPS_PER_IDLE;
        (!self.after.is_zero()).then_some(every.max(Duration::from_millis(1)))
    }
}

/// The kinds of entity with virtual actors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    User,
    Product,
    Coupon,
}

impl Kind {
    /// Its name in logs and metric labels (`metrics::ENTITY_KINDS`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Product => "product",
            Kind::Coupon => "coupon",
        }
    }
}

/// One entity: its kind and id.
pub type Key = (Kind, u64);

/// A running actor and when the last message was routed to it (`Directory::now_ms`).
pub struct Running<M: Message> {
    pub actor: ActorRef<M>,
    last_message: Arc<AtomicU64>,
}

/// Where an entity is: its state (`P`, compact), its actor, or between the two.
pub enum Residence<M: Message, P> {
    Passive(P),
    Running(Running<M>),
    /// The actor's mailbox is closed; it is handling what it had and will hand its state back.
    Passivating,
}

/// Where a message for an entity goes now.
pub enum Route<M: Message, S> {
    /// Its actor: send there.
    Actor(ActorRef<M>),
    /// Its actor is passivating: wait for the state to come back, then route again.
    Wait,
    /// It has no actor and the caller asked not to start one: a copy of its state.
    Passive(S),
    /// It has no actor and none may start: the engine is stopping.
    Closed,
}

impl<M: Message, P> Residence<M, P> {
    /// The running actor, stamped with `now` (ms); `Wait` while passivating; `None` if passive.
    fn route_to_actor<S>(&self, now: u64) -> Option<Route<M, S>> {
        match self {
            Residence::Running(running) => {
                // Written only when the millisecond changed: a hot entity's stamp is then read
                // far more often than written, instead of bouncing between cores.
                if running.last_message.load(Ordering::Relaxed) != now {
                    running.last_message.store(now, Ordering::Relaxed);
                }
                Some(Route::Actor(running.actor.clone()))
            }
            Residence::Passivating => Some(Route::Wait),
            Residence::Passive(_) => None,
        }
    }

    /// As `route_to_actor`, but while passive a copy of the state (`copy`), unless the caller
    /// will `activate` (then `None`).
    pub fn route<S>(
        &self,
        now: u64,
        activate: bool,
        copy: impl FnOnce(&P) -> S,
    ) -> Option<Route<M, S>> {
        match self {
            Residence::Passive(state) if !activate => Some(Route::Passive(copy(state))),
            residence => residence.route_to_actor(now),
        }
    }

    /// Routes to the actor, starting it from the passive state first (call under the entry's
    /// write lock). `start` spawns the actor; it does not wait for it.
    pub fn activate<S>(
        &mut self,
        directory: &Directory,
        key: Key,
        start: impl FnOnce(P) -> Result<ActorRef<M>, String>,
    ) -> Route<M, S> {
        let now = directory.now_ms();
        if let Some(route) = self.route_to_actor(now) {
            return route;
        }
        if directory.closed.load(Ordering::Acquire) {
            return Route::Closed;
        }
        let state = match std::mem::replace(self, Residence::Passivating) {
            Residence::Passive(state) => state,
            other => {
                *self = other; // not reached: route_to_actor answers for the others
                return Route::Wait;
            }
        };
        match start(state) {
            Ok(actor) => {
                let last_message = Arc::new(AtomicU64::new(now));
                directory.started(key, last_message.clone());
                *self = Residence::Running(Running {
                    actor: actor.clone(),
                    last_message,
                });
                Route::Actor(actor)
            }
            Err(error) => {
                // Spawning without a name cannot fail (only a name can collide); if it ever
                // did, the state is gone from memory and the entity answers 503.
                tracing::error!(?key, %error, "an actor could not be started");
                Route::Wait
            }
        }
    }

    /// Closes the running actor's mailbox and marks the entry passivating (call under the
    /// entry's write lock). With `idle_before` (ms), only if no message was routed to it since.
    /// Returns whether it began.
    pub fn passivate(&mut self, idle_before: Option<u64>) -> bool {
        let Residence::Running(running) = self else {
            return false;
        };
        if idle_before.is_some_and(|at| running.last_message.load(Ordering::Relaxed) > at) {
            return false;
        }
        // An actor still starting cannot drain yet (ractor would refuse to start it); the next
        // sweep, or its own first message, passivates it.
        if running.actor.get_status() != ractor::ActorStatus::Running {
            return false;
        }
        if running.actor.drain().is_err() {
            return false; // already stopping: the engine is stopping it
        }
        *self = Residence::Passivating;
        true
    }

    /// Takes the state back from the actor `actor` that just stopped (call under the entry's
    /// write lock, from the actor's `post_stop`). Returns whether it was passivating (rather
    /// than stopped with the engine).
    pub fn passivated(&mut self, actor: ActorId, state: P) -> bool {
        let passivating = match self {
            Residence::Passivating => true,
            Residence::Running(running) if running.actor.get_id() == actor => false,
            _ => {
                tracing::error!(%actor, "a stopped actor's state does not belong to its entry");
                return false;
            }
        };
        *self = Residence::Passive(state);
        passivating
    }

    /// The running actor, if there is one.
    pub fn actor(&self) -> Option<&ActorRef<M>> {
        match self {
            Residence::Running(running) => Some(&running.actor),
            _ => None,
        }
    }
}

/// A sender waiting for a passivating actor to hand its state back. Registering with the
/// directory's `Notify` takes its lock, so it is done only on this slow path: the first
/// `wait` registers and returns at once (the caller routes again, so a hand-back between its
/// last look and the registration is not missed); the next one waits, at most `call_timeout`.
#[derive(Default)]
struct Waiting<'a> {
    registered: Option<std::pin::Pin<Box<tokio::sync::futures::Notified<'a>>>>,
}

impl<'a> Waiting<'a> {
    async fn wait(&mut self, directory: &'a Directory) -> Result<(), Undelivered> {
        match self.registered.take() {
            None => {
                let mut passivated = Box::pin(directory.passivated.notified());
                passivated.as_mut().enable();
                self.registered = Some(passivated);
                Ok(())
            }
            Some(passivated) => tokio::time::timeout(directory.call_timeout, passivated)
                .await
                .map_err(|_| Undelivered::TimedOut),
        }
    }
}

/// A message for one kind of entity: how the directory finds, starts and stops that kind.
pub trait Resident: Message + Sized {
    /// The entity's whole state, as its actor holds it.
    type State: Send + 'static;
    const KIND: Kind;
    /// Where a message for entity `id` goes; with `activate`, a passive entity is started
    /// (never `Route::Passive`). `None`: no such entity.
    fn route(directory: &Directory, id: u64, activate: bool) -> Option<Route<Self, Self::State>>;
    /// Begins passivating entity `id` (see `Residence::passivate`).
    fn passivate(directory: &Directory, id: u64, idle_before: Option<u64>) -> bool;
}

/// A forwarded message was dropped: its reply port with it (the caller hears 503), and what
/// its chain had changed is finished by recovery at the next start.
fn forward_failed<M: Resident>(id: u64, error: Undelivered) {
    tracing::error!(kind = ?M::KIND, id, ?error, "a forwarded message was not delivered");
}

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undelivered {
    /// No entity has that id.
    Unknown,
    /// Its actor stopped without handing its state back (the engine is stopping).
    Stopped,
    /// No answer within `call_timeout`.
    TimedOut,
}

impl Directory {
    /// Delivers `message` to entity `id`'s actor, starting it if it is passive and waiting
    /// out a passivation. Delivered means in the actor's mailbox: it will be handled, once.
    pub async fn send<M: Resident>(&self, id: u64, mut message: M) -> Result<(), Undelivered> {
        let mut refused_by = None;
        let mut waiting = Waiting::default();
        loop {
            match M::route(self, id, true) {
                None => return Err(Undelivered::Unknown),
                Some(Route::Closed) => return Err(Undelivered::Stopped),
                Some(Route::Actor(actor)) => {
                    if refused_by == Some(actor.get_id()) {
                        // Refused, yet still the entity's actor: it stopped on its own.
                        return Err(Undelivered::Stopped);
                    }
                    match actor.send_message(message) {
                        Ok(()) => return Ok(()),
                        Err(MessagingErr::SendErr(returned)) => {
                            message = returned;
                            refused_by = Some(actor.get_id());
                        }
                        Err(_) => return Err(Undelivered::Stopped),
                    }
                }
                Some(Route::Wait | Route::Passive(_)) => waiting.wait(self).await?,
            }
        }
    }

    /// Delivers `message` as `send` does, but never waits: while the entity is passivating, a
    /// task delivers it once the state is back. Actors passing a chain on use this: a handler
    /// that waited for a passivating entity could be waiting for one that waits for it (a
    /// product passing a placement back to a buyer that is releasing stock on that product).
    /// One message per step of a chain, so a late delivery reorders nothing that matters.
    pub fn forward<M: Resident>(self: &Arc<Self>, id: u64, message: M) {
        let message = match M::route(self, id, true) {
            Some(Route::Actor(actor)) => match actor.send_message(message) {
                Ok(()) => return,
                Err(MessagingErr::SendErr(returned)) => returned,
                Err(_) => return forward_failed::<M>(id, Undelivered::Stopped),
            },
            Some(Route::Wait | Route::Passive(_)) => message,
            Some(Route::Closed) => return forward_failed::<M>(id, Undelivered::Stopped),
            None => return forward_failed::<M>(id, Undelivered::Unknown),
        };
        let directory = self.clone();
        tokio::spawn(async move {
            if let Err(error) = directory.send(id, message).await {
                forward_failed::<M>(id, error);
            }
        });
    }

    /// Asks entity `id` (see `send`) and waits for the reply, all of it at most
    /// `call_timeout`.
    pub async fn ask<M: Resident, R: Send + 'static>(
        &self,
        id: u64,
        message: impl FnOnce(ractor::RpcReplyPort<R>) -> M,
    ) -> Result<R, Undelivered> {
        let (port, reply) = tokio::sync::oneshot::channel();
        let asked = async {
            self.send(id, message(port.into())).await?;
            reply.await.map_err(|_| Undelivered::Stopped)
        };
        tokio::time::timeout(self.call_timeout, asked)
            .await
            .unwrap_or(Err(Undelivered::TimedOut))
    }

    /// Entity `id`'s state without starting its actor: read from the entry when it is
    /// passive, asked of its actor (`read`) when it runs. `None`: no such entity.
    pub async fn read<M: Resident>(
        &self,
        id: u64,
        read: impl Fn(ractor::RpcReplyPort<M::State>) -> M,
    ) -> Result<M::State, Undelivered> {
        let mut waiting = Waiting::default();
        loop {
            match M::route(self, id, false) {
                None => return Err(Undelivered::Unknown),
                Some(Route::Passive(state)) => return Ok(state),
                Some(Route::Actor(actor)) => {
                    let (port, reply) = tokio::sync::oneshot::channel();
                    if actor.send_message(read(port.into())).is_ok() {
                        let timeout = self.call_timeout;
                        return match tokio::time::timeout(timeout, reply).await {
                            Ok(Ok(state)) => Ok(state),
                            Ok(Err(_)) => Err(Undelivered::Stopped),
                            Err(_) => Err(Undelivered::TimedOut),
                        };
                    }
                    // Refused: it began passivating; its state comes back to the entry.
                    waiting.wait(self).await?;
                }
                Some(Route::Wait) => waiting.wait(self).await?,
                Some(Route::Closed) => return Err(Undelivered::Stopped),
            }
        }
    }

    /// Called by an entity's actor after each message it handled: with `passivate_after` zero,
    /// it passivates at once.
    pub fn handled<M: Resident>(&self, id: u64) {
        if self.passivation.after.is_zero() {
            self.begin_passivation::<M>(id, None);
        }
    }

    /// Begins passivating entity `id` of `M`'s kind (see `Residence::passivate`).
    fn begin_passivation<M: Resident>(&self, id: u64, idle_before: Option<u64>) -> bool {
        let begun = M::passivate(self, id, idle_before);
        if begun {
            self.passivating.fetch_add(1, Ordering::Relaxed);
        }
        begun
    }

    /// Milliseconds since the directory was made, on tokio's clock (so the paused clock of
    /// tests moves it).
    pub fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    /// Registers a started actor; over `max_running`, wakes the sweeper to evict.
    fn started(&self, key: Key, last_message: Arc<AtomicU64>) {
        self.activations.fetch_add(1, Ordering::Relaxed);
        let running = {
            let mut running = self.running.lock().expect("not poisoned");
            running.insert(key, last_message);
            running.len()
        };
        if running > self.passivation.max_running {
            self.over_cap.notify_one();
        }
    }

    /// Forgets a stopped actor and wakes whoever waits for a state to come back.
    pub(super) fn stopped(&self, key: Key, was_passivating: bool) {
        if was_passivating {
            self.passivating.fetch_sub(1, Ordering::Relaxed);
        }
        self.passivations.fetch_add(1, Ordering::Relaxed);
        self.running.lock().expect("not poisoned").remove(&key);
        self.passivated.notify_waiters();
    }

    /// How many entity actors have started, and stopped, so far.
    pub fn activations(&self) -> (u64, u64) {
        (
            self.activations.load(Ordering::Relaxed),
            self.passivations.load(Ordering::Relaxed),
        )
    }

    /// How many entity actors run.
    pub fn running_count(&self) -> usize {
        self.running.lock().expect("not poisoned").len()
    }

    /// Every running entity.
    pub fn running(&self) -> Vec<Key> {
        let running = self.running.lock().expect("not poisoned");
        running.keys().copied().collect()
    }

    fn passivate(&self, (kind, id): Key, idle_before: Option<u64>) -> bool {
        use crate::kernel::actors::{
            coupon::CouponMessage, product::ProductMessage, user::UserMessage,
        };
        match kind {
            Kind::User => self.begin_passivation::<UserMessage>(id, idle_before),
            Kind::Product => self.begin_passivation::<ProductMessage>(id, idle_before),
            Kind::Coupon => self.begin_passivation::<CouponMessage>(id, idle_before),
        }
    }

    /// One sweep: passivates every actor without a message for `passivate_after`. Returns
    /// how many began passivating.
    pub fn sweep(&self) -> usize {
        let after_ms = self.passivation.after.as_millis() as u64;
        let Some(idle_before) = self.now_ms().checked_sub(after_ms) else {
            return 0;
        };
        let idle: Vec<Key> = {
            let running = self.running.lock().expect("not poisoned");
            running
                .iter()
                .filter(|(_, last)| last.load(Ordering::Relaxed) <= idle_before)
                .map(|(key, _)| *key)
                .collect()
        };
        idle.into_iter()
            .filter(|key| self.passivate(*key, Some(idle_before)))
            .count()
    }

    /// How many running actors are not already passivating.
    fn staying(&self) -> usize {
        let running = self.running.lock().expect("not poisoned").len();
        running.saturating_sub(self.passivating.load(Ordering::Relaxed))
    }

    /// Over `max_running` (not counting actors already passivating): passivates the least
    /// recently used actors, idle or not, down to nine tenths of the cap, so a burst does not
    /// evict on every activation. Returns how many it could not stop yet (still starting).
    pub fn evict(&self) -> usize {
        let cap = self.passivation.max_running;
        let staying = self.staying();
        if staying <= cap {
            return 0;
        }
        let excess = staying - cap * 9 / 10;
        let mut by_age: Vec<(u64, Key)> = {
            let running = self.running.lock().expect("not poisoned");
            running
                .iter()
                .map(|(key, last)| (last.load(Ordering::Relaxed), *key))
                .collect()
        };
        // Actors already passivating are among the oldest too; taking `excess` more than them
        // is harmless (each refuses), and finding them would cost a lock per actor.
        let take = (excess + self.passivating.load(Ordering::Relaxed)).min(by_age.len());
        if take < by_age.len() {
            by_age.select_nth_unstable(take);
        }
        let begun = by_age[..take]
            .iter()
            .filter(|(_, key)| self.passivate(*key, None))
            .take(excess)
            .count();
        excess - begun
    }

    /// Runs sweeps every `sweep_every` and evictions whenever the cap is passed, until the
    /// directory is gone.
    pub async fn sweeper(directory: std::sync::Weak<Directory>) {
        let Some(first) = directory.upgrade() else {
            return;
        };
        let every = first.passivation.sweep_every();
        let over_cap = first.over_cap.clone();
        drop(first);
        let mut ticks = every.map(|every| {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        loop {
            let tick = async {
                match &mut ticks {
                    Some(ticks) => {
                        ticks.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let sweep = tokio::select! {
                _ = tick => true,
                _ = over_cap.notified() => false,
            };
            let Some(directory) = directory.upgrade() else {
                return;
            };
            if sweep {
                directory.sweep();
            }
            // Actors still starting cannot stop yet: evict again until under the cap (a
            // bounded number of times: an actor that died without handing its state back
            // never stops, and must not keep the sweeper spinning).
            for _ in 0..EVICTION_RETRIES {
                if directory.evict() == 0 || directory.closed.load(Ordering::Acquire) {
                    break;
                }
                tokio::time::sleep(EVICTION_RETRY).await;
            }
        }
    }
}
