//! A coupon's state and its transition: first come, first served issue of its remaining
//! quantity, at most one unit per user. The coupon actor (`src/kernel/actors/coupon.rs`) runs it, and
//! so does replay.

use std::collections::BTreeSet;

use thiserror::Error;

use crate::clock::Timestamp;
use crate::code::Code;
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
