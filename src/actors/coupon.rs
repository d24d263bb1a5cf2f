//! The coupon actor: one per coupon, owner of its remaining quantity and of who holds it.
//! First come, first served: issue requests are served one at a time in arrival order, so with
//! N racing users exactly min(N, quantity) get one and nobody gets two.
//!
//! The engine checks that the user exists before it asks, so a unit taken here is never lost:
//! the issued coupon is cast to the user's actor before the reply leaves.

use std::collections::BTreeSet;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use thiserror::Error;

use std::sync::Arc;

use crate::actors::Recorder;
use crate::actors::user::UserMessage;
use crate::clock::Timestamp;
use crate::directory::Directory;
use crate::error::Code;
use crate::journal::Record;
use crate::model::{CouponId, CouponStatus, CouponView, Discount, UserCoupon, UserId};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IssueError {
    #[error("coupon {coupon_id} was already issued to user {user_id}")]
    AlreadyIssued {
        coupon_id: CouponId,
        user_id: UserId,
    },
    #[error("coupon {0} is sold out")]
    SoldOut(CouponId),
    #[error("coupon {0} has expired")]
    Expired(CouponId),
}

impl IssueError {
    pub fn code(&self) -> Code {
        match self {
            IssueError::AlreadyIssued { .. } => Code::CouponAlreadyIssued,
            IssueError::SoldOut(_) => Code::CouponSoldOut,
            IssueError::Expired(_) => Code::CouponExpired,
        }
    }
}

/// Everything a coupon actor owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouponState {
    pub id: CouponId,
    pub name: String,
    pub discount: Discount,
    pub total: u64,
    pub remaining: u64,
    pub expires_at: Option<Timestamp>,
    pub holders: BTreeSet<UserId>,
}

impl CouponState {
    pub fn new(
        id: CouponId,
        name: String,
        discount: Discount,
        total: u64,
        expires_at: Option<Timestamp>,
    ) -> CouponState {
        CouponState {
            id,
            name,
            discount,
            total,
            remaining: total,
            expires_at,
            holders: BTreeSet::new(),
        }
    }

    /// Issues one unit to `user_id`. Checks, in the spec's order: not already held, not
    /// expired, some remaining.
    pub fn issue(&mut self, user_id: UserId, now: Timestamp) -> Result<UserCoupon, IssueError> {
        if self.holders.contains(&user_id) {
            return Err(IssueError::AlreadyIssued {
                coupon_id: self.id,
                user_id,
            });
        }
        if self.expires_at.is_some_and(|expires_at| expires_at <= now) {
            return Err(IssueError::Expired(self.id));
        }
        if self.remaining == 0 {
            return Err(IssueError::SoldOut(self.id));
        }
        self.remaining -= 1;
        self.holders.insert(user_id);
        Ok(UserCoupon {
            coupon_id: self.id,
            user_id,
            name: self.name.clone(),
            discount: self.discount,
            status: CouponStatus::Available,
            issued_at: now,
            used_at: None,
            order_id: None,
            expires_at: self.expires_at,
        })
    }

    pub fn view(&self) -> CouponView {
        CouponView {
            id: self.id,
            name: self.name.clone(),
            discount: self.discount,
            total_quantity: self.total,
            remaining_quantity: self.remaining,
            expires_at: self.expires_at,
        }
    }
}

/// The coupon actor's whole API.
pub enum CouponMessage {
    /// Issues one unit to the user and delivers it to the user's actor before replying. Fails
    /// with `AlreadyIssued`, `Expired` or `SoldOut`.
    Issue {
        user_id: UserId,
        now: Timestamp,
        reply: RpcReplyPort<Result<UserCoupon, IssueError>>,
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

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CouponMessage::Issue {
                user_id,
                now,
                reply,
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
                let _ = reply.send(result);
            }
            CouponMessage::View(reply) => {
                let _ = reply.send(state.view());
            }
            CouponMessage::Read(reply) => {
                let _ = reply.send(state.clone());
            }
        }
        self.directory.handled::<CouponMessage>(state.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coupon(total: u64, expires_at: Option<Timestamp>) -> CouponState {
        CouponState::new(
            5,
            "10% off".into(),
            Discount::Percent { percent: 10 },
            total,
            expires_at,
        )
    }

    #[test]
    fn issue_takes_one_unit_and_remembers_the_holder() {
        let mut state = coupon(2, None);
        let issued = state.issue(1, Timestamp(3)).unwrap();
        assert_eq!(issued.status, CouponStatus::Available);
        assert_eq!(issued.issued_at, Timestamp(3));
        assert_eq!(state.remaining, 1);
        assert!(state.holders.contains(&1));
    }

    #[test]
    fn the_same_user_gets_at_most_one() {
        let mut state = coupon(5, None);
        state.issue(1, Timestamp(0)).unwrap();
        assert_eq!(
            state.issue(1, Timestamp(0)),
            Err(IssueError::AlreadyIssued {
                coupon_id: 5,
                user_id: 1
            })
        );
        assert_eq!(state.remaining, 4);
    }

    #[test]
    fn sold_out_after_the_last_unit() {
        let mut state = coupon(1, None);
        state.issue(1, Timestamp(0)).unwrap();
        assert_eq!(state.issue(2, Timestamp(0)), Err(IssueError::SoldOut(5)));
        assert_eq!(state.remaining, 0);
    }

    #[test]
    fn an_expired_coupon_is_not_issued() {
        let mut state = coupon(3, Some(Timestamp(100)));
        assert!(state.issue(1, Timestamp(99)).is_ok());
        assert_eq!(state.issue(2, Timestamp(100)), Err(IssueError::Expired(5)));
        assert_eq!(state.remaining, 2);
    }

    #[test]
    fn already_issued_is_reported_before_sold_out() {
        let mut state = coupon(1, None);
        state.issue(1, Timestamp(0)).unwrap();
        assert!(matches!(
            state.issue(1, Timestamp(0)),
            Err(IssueError::AlreadyIssued { .. })
        ));
    }
}
