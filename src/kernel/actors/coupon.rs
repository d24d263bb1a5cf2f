//! The coupon actor: one per coupon, owner of its remaining quantity and of who holds it.
//! First come, first served: issue requests are served one at a time in arrival order, so with
//! N racing users exactly min(N, quantity) get one and nobody gets two.
//!
//! The engine checks that the user exists before it asks, so a unit taken here is never lost:
//! the issued coupon is cast to the user's actor before the reply leaves.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::domain::coupon::{CouponState, IssueError};
use crate::domain::state::EngineState;
use crate::kernel::actors::Recorder;
use crate::kernel::actors::user::UserMessage;
use crate::kernel::directory::{Directory, Kind};
use crate::kernel::gate::Admission;
use crate::kernel::supervision::Supervision;
use crate::model::{CouponView, UserCoupon, UserId};
use crate::wire::Record;

/// The coupon actor's whole API.
pub enum CouponMessage {
    /// Issues one unit to the user and delivers it to the user's actor before replying. Fails
    /// with `AlreadyIssued`, `Expired` or `SoldOut`.
    Issue {
        user_id: UserId,
        now: Timestamp,
        reply: RpcReplyPort<Result<UserCoupon, IssueError>>,
        /// The command is in flight until the coupon is in its holder's mailbox.
        admission: Admission,
    },
    /// Replies with the coupon's public view.
    View(RpcReplyPort<CouponView>),
    /// Replies with a copy of the whole state (the admin audit).
    Read(RpcReplyPort<CouponState>),
}

pub struct CouponActor {
    pub recorder: Recorder,
    /// How issued coupons reach their users, and where the state goes back when the actor
    /// stops (the coupon is passive again).
    pub directory: Arc<Directory>,
    pub supervision: Arc<Supervision>,
    /// When the directory asked for this actor (its activation latency ends in `pre_start`).
    pub activated_at: tokio::time::Instant,
}

impl Actor for CouponActor {
    type Msg = CouponMessage;
    type State = CouponState;
    type Arguments = CouponState;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: CouponState,
    ) -> Result<Self::State, ActorProcessingErr> {
        self.directory.activated(self.activated_at);
        Ok(state)
    }

    /// Hands the state back to the directory: the coupon is passive again.
    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let passive = CouponState {
            name: std::mem::take(&mut state.name),
            holders: std::mem::take(&mut state.holders),
            ..*state
        };
        self.directory.coupon_stopped(myself.get_id(), passive);
        Ok(())
    }

    /// Runs the message's handler under supervision: if it fails, the coupon is restored.
    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let key = (Kind::Coupon, state.id);
        let issuing = match &message {
            CouponMessage::Issue { user_id, .. } => Some(*user_id),
            _ => None,
        };
        let handled = async {
            self.dispatch(message, state).await;
            self.supervision.injected(key, state);
            Ok(())
        };
        if self.supervision.run(key, handled).await.is_err() {
            self.restore(state, issuing).await?;
        }
        self.directory.handled::<CouponMessage>(key.1);
        Ok(())
    }
}

impl CouponActor {
    /// Handles one message: a branch per kind.
    async fn dispatch(&self, message: CouponMessage, state: &mut CouponState) {
        match message {
            CouponMessage::Issue {
                user_id,
                now,
                reply,
                admission,
            } => {
                let result = state.issue(user_id, now);
                if let Ok(coupon) = &result {
                    self.recorder.record(|| Record::CouponIssued {
                        coupon_id: coupon.coupon_id,
                        user_id,
                        issued_at: now.0,
                    });
                    // Delivered (the user started if passive) before the reply; refused only
                    // while the engine stops, and the journal has the issue either way.
                    let received = UserMessage::ReceiveCoupon(coupon.clone());
                    if let Err(error) = self.directory.send(user_id, received).await {
                        tracing::error!(user_id, ?error, "an issued coupon did not reach its user");
                    }
                }
                self.recorder.reply(reply, result);
                drop(admission);
            }
            CouponMessage::View(reply) => {
                let _ = reply.send(state.view());
            }
            CouponMessage::Read(reply) => {
                let _ = reply.send(state.clone());
            }
        }
    }

    /// Takes the coupon's state as the journal has it, after a handler failed
    /// (`src/kernel/supervision.rs`). If the failed message was an issue to `issuing` that
    /// the journal has, the coupon is handed to that user again (it may have failed before
    /// handing it over; a user keeps a coupon it already holds as it is).
    async fn restore(
        &self,
        state: &mut CouponState,
        issuing: Option<UserId>,
    ) -> Result<(), ActorProcessingErr> {
        let coupon_id = state.id;
        let read = move |replica: &EngineState| {
            let coupon = replica.coupons.get(&coupon_id)?.clone();
            let issued = issuing
                .and_then(|user_id| replica.users.get(&user_id))
                .and_then(|user| user.coupons.get(&coupon_id))
                .cloned();
            Some((coupon, issued))
        };
        let key = (Kind::Coupon, coupon_id);
        let Some((restored, issued)) = self.supervision.durable(key, read).await? else {
            return Ok(());
        };
        *state = restored;
        if let Some(coupon) = issued {
            let user_id = coupon.user_id;
            let received = UserMessage::ReceiveCoupon(coupon);
            if let Err(error) = self.directory.send(user_id, received).await {
                tracing::error!(user_id, ?error, "an issued coupon did not reach its user");
            }
        }
        Ok(())
    }
}
