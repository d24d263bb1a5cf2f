//! The actors: one per user, product and coupon, plus the order supervisor, the sales
//! statistics and the data platform. Each file holds one actor: its message enum (its whole
//! API), its state with plain synchronous methods (unit-tested without a runtime) and a thin
//! `handle` that matches a message to one of them.
//!
//! Business failures travel inside replies (`Result<_, DomainError>`); a handler only returns
//! `Err` for a bug. Entity actors run each handler under `Supervision::run`, so a bug (an
//! `Err` or a panic) restores the entity from the journal instead of stopping its actor.

pub mod coupon;
pub mod data_platform;
pub mod order_supervisor;
pub mod product;
pub mod sales;
pub mod user;

use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};

use crate::clock::Clock;
use crate::config::Limits;
use crate::journal::{Journal, Record};
use crate::kernel::directory::Directory;
use crate::kernel::gate::Gate;
use crate::kernel::supervision::{Moment, Panics, Supervision, recorded_by};
use crate::metrics::Metrics;
use crate::model::{OrderId, UserId};

/// Where an actor appends the record of each change it makes (see `src/journal/mod.rs`):
/// inside its handler, before any follow-up or reply. Without a journal, nowhere.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    journal: Option<Journal>,
    /// The test double that may fail a handler right after it recorded (`Moment::Recorded`).
    panics: Option<Panics>,
}

impl Recorder {
    pub fn new(journal: Option<Journal>, panics: Option<Panics>) -> Recorder {
        Recorder { journal, panics }
    }

    /// Appends the record `record` builds (built only when there is a journal).
    pub fn record(&self, record: impl FnOnce() -> Record) {
        if let Some(journal) = &self.journal {
            let record = record();
            let key = self.panics.as_ref().and_then(|_| recorded_by(&record));
            journal.append(record);
            if let (Some(panics), Some(key)) = (&self.panics, key) {
                panics.at(Moment::Recorded, key, &mut ());
            }
        }
    }

    /// Runs `then` once every change appended so far is durable: at once without a journal,
    /// else on the journal's writer right after the batch (`Journal::release_after`). Nothing
    /// waits for it. Every reply that must not leave before its change is on disk goes
    /// through here.
    pub fn after_durable(&self, then: impl FnOnce() + Send + 'static) {
        match &self.journal {
            Some(journal) => journal.release_after(journal.appended(), then),
            None => then(),
        }
    }

    /// Sends `value` on `reply` once every change appended so far is durable: the change it
    /// answers and every change it rests on. Refusals wait too, since a refusal can rest on
    /// another buyer's change that is not on disk yet (the last unit sold, say).
    ///
    /// Call it last, after the follow-ups are sent: whoever hears the reply must find them in
    /// the mailboxes already.
    pub fn reply<T: Send + 'static>(&self, reply: RpcReplyPort<T>, value: T) {
        self.after_durable(move || {
            let _ = reply.send(value);
        });
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }
}

/// What actors need to reach each other: shared, immutable after start-up.
pub struct Links {
    pub directory: Arc<Directory>,
    pub gate: Arc<Gate>,
    pub sales: ActorRef<sales::SalesMessage>,
    /// The order supervisor: buyers arm and disarm their orders' deadlines there.
    pub deadlines: ActorRef<order_supervisor::SupervisorMessage>,
    pub data_platform: ActorRef<data_platform::DataPlatformMessage>,
    pub clock: Clock,
    pub recorder: Recorder,
    pub limits: Limits,
    /// How long any caller waits for an actor's reply before giving up.
    pub call_timeout: Duration,
    /// Where user actors report orders that ended, for the archive; `None` without one.
    pub ended: Option<tokio::sync::mpsc::UnboundedSender<Ended>>,
    /// Ended orders that have left memory for the archive (`EngineState::archived_orders`).
    pub archived_orders: std::sync::atomic::AtomicU64,
    pub metrics: Arc<Metrics>,
    /// How an entity actor survives a handler that failed.
    pub supervision: Arc<Supervision>,
}

/// An order that ended (PAID, EXPIRED or CANCELLED) at `at`: it may move to the archive
/// `order.archive_after` later.
#[derive(Clone, Copy, Debug)]
pub struct Ended {
    pub user_id: UserId,
    pub order_id: OrderId,
    pub at: tokio::time::Instant,
}

impl Links {
    /// Reports that an order ended, if there is an archive to move it to.
    pub fn order_ended(&self, user_id: UserId, order_id: OrderId) {
        if let Some(ended) = &self.ended {
            let at = tokio::time::Instant::now();
            let _ = ended.send(Ended {
                user_id,
                order_id,
                at,
            });
        }
    }
}
