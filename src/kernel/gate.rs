//! The admission gate: how the admin audit gets a consistent view of many actors. (Snapshots
//! no longer need one: they are written from the journal's replica, `src/journal/mod.rs`.)
//!
//! Every command — each `Engine` use case and each expiry — holds the gate open (an
//! `Admission`, a shared read guard) from its first message until its reply is released. The
//! admission travels with the command's messages: an order placement carries it from the buyer
//! through each product and back, a cancel through each product's release, and it is dropped
//! with the reply, once every follow-up of the command (commit or release stock, record a sale,
//! deliver to the data platform, hand a coupon to its holder) is in some mailbox. A caller that
//! goes away (a dropped connection) does not let the gate close early. So when the gate is
//! closed (the exclusive guard, taken after in-flight commands drain) every effect of every
//! finished command is already in some mailbox, and mailboxes are FIFO: a `Read` sent after
//! closing is answered only after those effects are applied. Reading every actor then gives a
//! state in which no order is half placed and no payment half applied.
//! A passive entity (`src/kernel/directory/residence.rs`) is read from the directory instead: it
//! has no effect waiting, since a message in a mailbox keeps its actor from handing the state
//! back, and a follow-up is in a mailbox before its command's admission is dropped.
//!
//! Commands that touch a single actor (balance, charge, restock, reads, admin creations) do
//! not enter: that actor's mailbox orders them before or after the audit's `Read`, and the
//! invariants they could affect are the actor's own (a charge keeps a user's balance equal to
//! its initial balance plus charges minus payments). Only commands that span actors enter:
//! placing, paying and cancelling an order, issuing a coupon, and expiry. This keeps the gate
//! off the hottest paths.
//!
//! tokio's RwLock is fair: once a reader of the whole state waits, new commands queue behind it,
//! so the view cannot be starved under load. Commands that are in flight finish first.

use std::sync::Arc;

use tokio::sync::{OwnedRwLockReadGuard, RwLock, RwLockWriteGuard};

#[derive(Debug, Default)]
pub struct Gate(Arc<RwLock<()>>);

/// One command admitted through the gate: it is in flight while this lives, wherever it went.
pub type Admission = OwnedRwLockReadGuard<()>;

impl Gate {
    /// Admits one command; it runs while the returned guard lives.
    pub async fn enter(&self) -> Admission {
        self.0.clone().read_owned().await
    }

    /// Waits for in-flight commands to finish and holds new ones back while the guard lives.
    pub async fn close(&self) -> RwLockWriteGuard<'_, ()> {
        self.0.write().await
    }
}

#[cfg(test)]
mod tests {
    //! The gate's futures stepped by hand with tokio-test: whether a future is pending is the
    //! whole contract here, and polling it directly shows it without a runtime or a timer.
    use tokio_test::{assert_pending, assert_ready, task};

    use super::Gate;

    #[test]
    fn closing_waits_for_commands_in_flight_and_holds_new_ones_back() {
        let gate = Gate::default();
        let command = gate.0.try_read().expect("open");
        let mut close = task::spawn(gate.close());
        assert_pending!(close.poll(), "a command is in flight");
        drop(command);
        assert!(
            close.is_woken(),
            "the last command leaving wakes the closer"
        );
        let closed = assert_ready!(close.poll());
        let mut next = task::spawn(gate.enter());
        assert_pending!(next.poll(), "new commands wait while the gate is closed");
        drop(closed);
        assert!(next.is_woken());
        let _admitted = assert_ready!(next.poll());
    }

    #[test]
    fn a_waiting_closer_holds_back_commands_that_arrive_after_it() {
        let gate = Gate::default();
        let command = gate.0.try_read().expect("open");
        let mut close = task::spawn(gate.close());
        assert_pending!(close.poll());
        let mut late = task::spawn(gate.enter());
        assert_pending!(
            late.poll(),
            "fair: the audit cannot be starved by new commands"
        );
        drop(command);
        let closed = assert_ready!(close.poll());
        drop(closed);
        let _admitted = assert_ready!(late.poll());
    }
}
