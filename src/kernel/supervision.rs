//! Supervision of the entity actors (users, products, coupons): a handler that panics or
//! returns an error does not take its entity down with it.
//!
//! Each entity actor runs every message's handler through `Supervision::run`, which catches a
//! panic (and turns an `Err` into the same failure). A failed handler may have left its state
//! half changed, so the actor throws that state away and takes the entity's state as the
//! journal has it (`Supervision::durable`: the journal's replica once every record appended so
//! far is applied to it): every change the entity recorded stands — whether or not its answer
//! had left — and nothing it had not recorded does. The actor then finishes what the failed
//! message may have left undone (`restore` in each actor: a user gives back the slots of
//! orders that ended, re-arms its PENDING orders' deadlines and settles the stock of the order
//! the message was about; a product settles reservations of orders that ended and passes on
//! the releases it was handed; a coupon hands the unit the failed issue took to its user) and
//! goes on with its mailbox. The failure is logged at ERROR with the entity and counted
//! (`commerce_actor_failures_total{kind}`).
//!
//! Why in the handler rather than a ractor supervisor restarting a dead actor: the actor keeps
//! its mailbox, so only the failed message can be lost, no message queued behind it; linking
//! every activation to a supervisor would cost a process-wide lock per activation; and the
//! directory's entry never points at a dead actor.
//!
//! What the failed message carried can be lost with it:
//! - its answer, if it had not left: the caller hears 503 even though a change the handler had
//!   recorded stands (a retried charge is then a second charge: idempotency keys are the cure);
//! - a placement it was passing on: the stock reserved for it so far stays reserved until the
//!   next start, whose recovery releases stock of placements that never became orders;
//! - follow-ups no replay makes: a paid order's sale in the daily statistics and its delivery
//!   to the data platform reach those actors at the next start (recovery rebuilds both from the
//!   payment's record).
//!
//! If the entity cannot be restored (the replica stopped matching the journal, or the journal
//! is closing), its actor stops without handing back its half-changed state: the entity
//! answers 503 until the next start, which recovers it from the journal. The restore waits
//! for the checkpointer, behind a snapshot it may be writing; it waits for no actor.
//!
//! Without a journal (tests, the embedded simulator) nothing is durable to restore from: the
//! entity keeps its state as the handler left it, and the failure is logged and counted all
//! the same.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use ractor::ActorProcessingErr;

use crate::domain::state::EngineState;
use crate::journal::Journal;
use crate::kernel::directory::Key;
use crate::metrics::Metrics;
use crate::wire::Record;

/// A test double that makes a handler fail: asked at each `Moment` of an entity actor's
/// handler, with the entity and (after the handler) its state, which it may change as a
/// half-applied change would, it answers whether that handler panics now. Never set outside
/// tests.
#[derive(Clone)]
pub struct Panics(pub Arc<PanicWhen>);

/// Given the moment, the entity and its state: whether the handler panics now.
pub type PanicWhen = dyn Fn(Moment, Key, &mut dyn Any) -> bool + Send + Sync;

/// Where in a handler a test may make it panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// Right after the handler appended a record (no state given: `()`), before whatever it
    /// does next — follow-ups, the reply.
    Recorded,
    /// After the handler's work: its records appended, its follow-ups sent, its reply handed
    /// over.
    Handled,
}

impl Panics {
    /// Panics if the test says so.
    pub fn at(&self, moment: Moment, key: Key, state: &mut dyn Any) {
        if (self.0)(moment, key, state) {
            panic!("a panic injected by a test");
        }
    }
}

/// The entity whose actor appends `record` (the test double's key at `Moment::Recorded`).
pub fn recorded_by(record: &Record) -> Option<Key> {
    use crate::kernel::directory::Kind::{Coupon, Product, User};
    Some(match record {
        Record::Charged { user_id, .. }
        | Record::OrderPlaced { user_id, .. }
        | Record::OrderPaid { user_id, .. }
        | Record::OrderCancelled { user_id, .. }
        | Record::OrderExpired { user_id, .. }
        | Record::OrdersArchived { user_id, .. } => (User, *user_id),
        Record::Reserved { product_id, .. }
        | Record::ReservedFor { product_id, .. }
        | Record::Committed { product_id, .. }
        | Record::Released { product_id, .. }
        | Record::Restocked { product_id, .. } => (Product, *product_id),
        Record::CouponIssued { coupon_id, .. } => (Coupon, *coupon_id),
        _ => return None,
    })
}

impl std::fmt::Debug for Panics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Panics(..)")
    }
}

/// What entity actors need to survive a failed handler. Shared by all of them.
pub struct Supervision {
    journal: Option<Journal>,
    metrics: Arc<Metrics>,
    panics: Option<Panics>,
}

impl Supervision {
    pub fn new(journal: Option<Journal>, metrics: Arc<Metrics>, panics: Option<Panics>) -> Self {
        Supervision {
            journal,
            metrics,
            panics,
        }
    }

    /// Runs `handler`, one message's handler for entity `key`. Returns the failure, logged
    /// and counted, if it panicked or returned an error; the caller then restores the entity.
    pub async fn run(
        &self,
        key: Key,
        handler: impl Future<Output = Result<(), ActorProcessingErr>>,
    ) -> Result<(), String> {
        let failure = match AssertUnwindSafe(handler).catch_unwind().await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error.to_string(),
            Err(panic) => panic_message(panic.as_ref()),
        };
        let (kind, id) = key;
        tracing::error!(?kind, id, %failure, "an actor's handler failed; its entity is restored from the journal");
        self.metrics.actor_failed(kind.name());
        Err(failure)
    }

    /// Where a test may fail a handler after its work (`Moment::Handled`): its last step,
    /// inside `run`.
    pub fn injected(&self, key: Key, state: &mut dyn Any) {
        if let Some(panics) = &self.panics {
            panics.at(Moment::Handled, key, state);
        }
    }

    /// The entity's durable state, as `read` finds it in the journal's replica once every
    /// record appended so far is applied: `Ok(None)` without a journal (the entity keeps its
    /// state); `Err` when it cannot be restored, for the actor to stop with (see above).
    pub async fn durable<T: Send + 'static>(
        &self,
        key: Key,
        read: impl FnOnce(&EngineState) -> Option<T> + Send + 'static,
    ) -> Result<Option<T>, ActorProcessingErr> {
        let Some(journal) = &self.journal else {
            return Ok(None);
        };
        let (kind, id) = key;
        let error = match journal.read_replica(read).await {
            Ok(Some(state)) => {
                tracing::info!(?kind, id, "entity restored from the journal");
                return Ok(Some(state));
            }
            Ok(None) => "the journal has no such entity".to_string(),
            Err(error) => error.to_string(),
        };
        tracing::error!(?kind, id, %error, "the entity could not be restored: it answers 503 until the next start");
        Err(error.into())
    }
}

/// What a caught panic said.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(message), _) => format!("panicked: {message}"),
        (None, Some(message)) => format!("panicked: {message}"),
        (None, None) => "panicked".to_string(),
    }
}
