//! The order supervisor: owns every order's deadline and drives expiry.
//!
//! It keeps one ordered set of (deadline, order, buyer) and a single timer for the earliest
//! deadline, instead of a timer task per order. When the timer fires, the due orders are sent
//! an `Expire` hint through the admission gate in a spawned task, so the supervisor never waits
//! on another actor or on the admin audit: arming an order stays a cheap insert. The hint is only a
//! hint — the user actor re-checks the order's status and deadline (paid orders ignore it).

use std::collections::BTreeSet;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::clock::{Clock, Timestamp};
use crate::kernel::actors::user::UserMessage;
use crate::kernel::directory::{Directory, Undelivered};
use crate::kernel::gate::Gate;
use crate::metrics::Metrics;
use crate::model::{OrderId, UserId};

/// The order supervisor's whole API.
pub enum SupervisorMessage {
    /// Watches a PENDING order: at `expires_at` its buyer is told to expire it. No reply.
    Arm {
        order_id: OrderId,
        user_id: UserId,
        expires_at: Timestamp,
    },
    /// The order was paid or cancelled: its deadline is dropped, so the supervisor holds only
    /// PENDING orders. No reply.
    Disarm { order_id: OrderId },
    /// The timer: expires every order that is due and re-arms for the next deadline.
    Tick,
    /// Replies with how many deadlines are being watched.
    Watched(RpcReplyPort<usize>),
}

#[derive(Default)]
pub struct SupervisorState {
    deadlines: BTreeSet<(Timestamp, OrderId, UserId)>,
    /// The deadline and buyer of each order in `deadlines`, to drop it by order id.
    armed: rustc_hash::FxHashMap<OrderId, (Timestamp, UserId)>,
    /// When the pending timer fires, if one is pending.
    wake_at: Option<Timestamp>,
}

impl SupervisorState {
    /// Removes and returns every deadline at or before `now`.
    fn take_due(&mut self, now: Timestamp) -> Vec<(OrderId, UserId)> {
        let later = self.deadlines.split_off(&(Timestamp(now.0 + 1), 0, 0));
        let due = std::mem::replace(&mut self.deadlines, later);
        due.into_iter()
            .map(|(_, order_id, user_id)| {
                self.armed.remove(&order_id);
                (order_id, user_id)
            })
            .collect()
    }

    fn arm(&mut self, order_id: OrderId, user_id: UserId, expires_at: Timestamp) {
        if let Some((previous, buyer)) = self.armed.insert(order_id, (expires_at, user_id)) {
            self.deadlines.remove(&(previous, order_id, buyer));
        }
        self.deadlines.insert((expires_at, order_id, user_id));
    }

    fn disarm(&mut self, order_id: OrderId) {
        if let Some((expires_at, user_id)) = self.armed.remove(&order_id) {
            self.deadlines.remove(&(expires_at, order_id, user_id));
        }
    }
}

/// What the supervisor reaches: buyers through the directory, behind the gate.
pub struct OrderSupervisor {
    pub directory: Arc<Directory>,
    pub gate: Arc<Gate>,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
}

impl OrderSupervisor {
    fn schedule(&self, myself: &ActorRef<SupervisorMessage>, state: &mut SupervisorState) {
        let Some(&(earliest, _, _)) = state.deadlines.first() else {
            return;
        };
        if state.wake_at.is_some_and(|wake_at| wake_at <= earliest) {
            return;
        }
        state.wake_at = Some(earliest);
        let delay = self
            .clock
            .instant_at(earliest)
            .saturating_duration_since(tokio::time::Instant::now());
        myself.send_after(delay, || SupervisorMessage::Tick);
    }

    /// Hands each due order's buyer an expiry hint. A hint that could not be delivered in
    /// time is armed again, due at once, so the order is tried again at the next tick.
    fn expire(&self, myself: &ActorRef<SupervisorMessage>, due: Vec<(OrderId, UserId)>) {
        if due.is_empty() {
            return;
        }
        let (directory, gate, clock) = (self.directory.clone(), self.gate.clone(), self.clock);
        let supervisor = myself.clone();
        tokio::spawn(async move {
            for (order_id, user_id) in due {
                // Through the gate like any command, so the admin audit never sees half an
                // expiry: the admission travels with the hint and its releases. Nothing here
                // waits for the buyer, so a burst of deadlines is handed out at once.
                let admission = gate.enter().await;
                let now = clock.now();
                let hint = UserMessage::Expire {
                    order_id,
                    now,
                    admission,
                };
                if let Err(error) = directory.send(user_id, hint).await {
                    tracing::error!(order_id, user_id, ?error, "could not deliver an expiry");
                    if error == Undelivered::TimedOut {
                        let _ = supervisor.cast(SupervisorMessage::Arm {
                            order_id,
                            user_id,
                            expires_at: now,
                        });
                    }
                }
            }
        });
    }
}

impl Actor for OrderSupervisor {
    type Msg = SupervisorMessage;
    type State = SupervisorState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SupervisorState::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMessage::Arm {
                order_id,
                user_id,
                expires_at,
            } => {
                state.arm(order_id, user_id, expires_at);
                self.schedule(&myself, state);
            }
            SupervisorMessage::Disarm { order_id } => state.disarm(order_id),
            SupervisorMessage::Tick => {
                state.wake_at = None;
                let due = state.take_due(self.clock.now());
                self.expire(&myself, due);
                self.schedule(&myself, state);
            }
            SupervisorMessage::Watched(reply) => {
                let _ = reply.send(state.deadlines.len());
            }
        }
        // Every PENDING order has a deadline here (those being expired right now aside).
        let pending = state.deadlines.len() as f64;
        self.metrics.pending_orders.set(pending);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_due_splits_at_now_inclusive() {
        let mut state = SupervisorState::default();
        state.arm(1, 100, Timestamp(10));
        state.arm(2, 100, Timestamp(20));
        state.arm(3, 101, Timestamp(21));
        assert_eq!(state.take_due(Timestamp(9)), vec![]);
        assert_eq!(state.take_due(Timestamp(20)), vec![(1, 100), (2, 100)]);
        assert_eq!(state.deadlines.len(), 1);
        assert_eq!(state.armed.len(), 1);
    }

    #[test]
    fn a_paid_or_cancelled_order_is_disarmed() {
        let mut state = SupervisorState::default();
        state.arm(1, 100, Timestamp(10));
        state.arm(2, 100, Timestamp(10));
        state.disarm(1);
        state.disarm(7);
        assert_eq!(state.take_due(Timestamp(10)), vec![(2, 100)]);
        assert!(state.deadlines.is_empty() && state.armed.is_empty());
    }
}
