//! Supervision of the entity actors (users, products, coupons): a handler that panics or
//! returns an error does not take its entity down with it.
//!
//! Each entity actor runs every message's handler through `Supervision::run`, which catches a
//! panic (and turns an `Err` into the same failure). A failed handler may have left its state
//! half changed, so the actor throws that state away and takes the entity's state as the
//! journal has it (`Supervision::durable`: the journal's replica once every record appended so
//! far is applied to it): every change the entity recorded stands — even one whose reply had
//! already left — and nothing it had not recorded does. The actor then finishes what the failed
//! message may have left undone on its side (`restore` in each actor: a user re-arms its
//! PENDING orders' deadlines, a product settles reservations of orders that ended, a coupon
//! hands its holders their coupons again) and goes on with its mailbox. The failure is logged
//! at ERROR with the entity and counted (`commerce_actor_failures_total{kind}`).
//!
//! Why in the handler rather than a ractor supervisor restarting a dead actor: the actor keeps
//! its mailbox, so only the failed message is lost (its reply port dropped: its caller hears
//! 503, never a success), no message queued behind it; linking every activation to a
//! supervisor would cost a process-wide lock per activation; and the directory's entry never
//! points at a dead actor.
//!
//! What the failed message itself carried is gone with it: a placement it was passing on
//! keeps its buyer's pending-order slot, and the stock it had reserved, until the next start
//! (recovery releases stock of placements that never became orders). Without a journal
//! (tests, the embedded simulator) nothing is durable to restore from: the entity keeps its
//! state as the handler left it, and the failure is logged and counted all the same.

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

/// A test double that makes a handler fail: asked after every message an entity actor handled,
/// with the entity and its state (which it may change, as a half-applied change would), it
/// answers whether that handler panics now. Never set outside tests.
#[derive(Clone)]
pub struct Panics(pub Arc<PanicWhen>);

/// Given the entity and its state after a handler: whether that handler panics now.
pub type PanicWhen = dyn Fn(Key, &mut dyn Any) -> bool + Send + Sync;

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

    /// The moment a test may fail a handler (`Panics`): the handler's last step, inside `run`.
    pub fn injected(&self, key: Key, state: &mut dyn Any) {
        if let Some(Panics(panics)) = &self.panics
            && panics(key, state)
        {
            panic!("a panic injected by a test");
        }
    }

    /// The entity's durable state, as `read` finds it in the journal's replica once every
    /// record appended so far is applied; `None` without a journal, or when the replica cannot
    /// answer (logged: the entity keeps its state as the handler left it).
    pub async fn durable<T: Send + 'static>(
        &self,
        key: Key,
        read: impl FnOnce(&EngineState) -> Option<T> + Send + 'static,
    ) -> Option<T> {
        let journal = self.journal.as_ref()?;
        let (kind, id) = key;
        match journal.read_replica(read).await {
            Ok(Some(state)) => Some(state),
            Ok(None) => {
                tracing::error!(
                    ?kind,
                    id,
                    "the journal has no such entity; it keeps its state"
                );
                None
            }
            Err(error) => {
                tracing::error!(?kind, id, %error, "the entity could not be restored; it keeps its state");
                None
            }
        }
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
