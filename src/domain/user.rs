//! A user's state and its transitions: balance, held coupons and orders, with the errors a
//! buyer can meet. Plain data and synchronous methods, unit-tested without a runtime; the user
//! actor (`src/kernel/actors/user.rs`) runs them, and so does replay (`EngineState::apply`).

use std::collections::BTreeMap;

use thiserror::Error;

use crate::clock::Timestamp;
use crate::code::Code;
use crate::model::{
    CouponId, CouponStatus, Order, OrderId, OrderStatus, Payment, UserCoupon, UserId, Won,
};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChargeError {
    #[error(
        "charging {amount} would bring user {user_id}'s balance over the limit of {max_balance}"
    )]
    BalanceLimitExceeded {
        user_id: UserId,
        amount: Won,
        max_balance: Won,
    },
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PaymentError {
    #[error("order {0} not found")]
    OrderNotFound(OrderId),
    #[error("order {0} has expired")]
    OrderExpired(OrderId),
    #[error("order {0} is already paid")]
    AlreadyPaid(OrderId),
    #[error("order {0} was cancelled")]
    Cancelled(OrderId),
    #[error("coupon {coupon_id} is not usable: {reason}")]
    CouponNotUsable {
        coupon_id: CouponId,
        reason: &'static str,
    },
    #[error("insufficient balance: {needed} needed, {balance} available")]
    InsufficientBalance { balance: Won, needed: Won },
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CancelError {
    #[error("order {0} not found")]
    OrderNotFound(OrderId),
    #[error("order {order_id} cannot be cancelled: it is {}", format!("{:?}", .status).to_uppercase())]
    NotCancellable {
        order_id: OrderId,
        status: OrderStatus,
    },
}

impl ChargeError {
    pub fn code(&self) -> Code {
        match self {
            ChargeError::BalanceLimitExceeded { .. } => Code::BalanceLimitExceeded,
        }
    }
}

impl PaymentError {
    pub fn code(&self) -> Code {
        match self {
            PaymentError::OrderNotFound(_) => Code::OrderNotFound,
            PaymentError::OrderExpired(_) => Code::OrderExpired,
            PaymentError::AlreadyPaid(_) => Code::OrderAlreadyPaid,
            PaymentError::Cancelled(_) => Code::OrderCancelled,
            PaymentError::CouponNotUsable { .. } => Code::CouponNotUsable,
            PaymentError::InsufficientBalance { .. } => Code::InsufficientBalance,
        }
    }
}

impl CancelError {
    pub fn code(&self) -> Code {
        match self {
            CancelError::OrderNotFound(_) => Code::OrderNotFound,
            CancelError::NotCancellable { .. } => Code::OrderNotCancellable,
        }
    }
}

/// Everything a user actor owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserState {
    pub id: UserId,
    pub balance: Won,
    /// The balance the user was created with; with `charged` it lets the audit check money.
    pub initial_balance: Won,
    /// The sum of every successful charge.
    pub charged: Won,
    /// The sum of `paid_amount` over the user's PAID orders: a running total kept with each
    /// payment, so money can be checked without every order at hand (an archived order is
    /// not).
    pub paid: Won,
    pub coupons: BTreeMap<CouponId, UserCoupon>,
    pub orders: BTreeMap<OrderId, Order>,
}

impl UserState {
    pub fn new(id: UserId, balance: Won) -> UserState {
        UserState {
            id,
            balance,
            initial_balance: balance,
            charged: 0,
            paid: 0,
            coupons: BTreeMap::new(),
            orders: BTreeMap::new(),
        }
    }

    /// Adds `amount` (already validated positive and within `max_charge`) to the balance.
    pub fn charge(&mut self, amount: Won, max_balance: Won) -> Result<Won, ChargeError> {
        let limit_exceeded = ChargeError::BalanceLimitExceeded {
            user_id: self.id,
            amount,
            max_balance,
        };
        let balance = self
            .balance
            .checked_add(amount)
            .ok_or(limit_exceeded.clone())?;
        if balance > max_balance {
            return Err(limit_exceeded);
        }
        self.balance = balance;
        self.charged += amount;
        Ok(balance)
    }

    /// Expires the order if it is PENDING and its deadline has passed; returns it if so.
    pub fn expire_if_due(&mut self, order_id: OrderId, now: Timestamp) -> Option<&Order> {
        let order = self.orders.get_mut(&order_id)?;
        if order.status != OrderStatus::Pending || now < order.expires_at {
            return None;
        }
        order.status = OrderStatus::Expired;
        Some(order)
    }

    /// Drops ended orders that the archive now holds; returns how many. A PENDING order, or
    /// one the user does not have, is an error and nothing is dropped.
    pub fn archive(&mut self, order_ids: &[OrderId]) -> Result<u64, String> {
        for order_id in order_ids {
            match self.orders.get(order_id) {
                Some(order) if order.status != OrderStatus::Pending => {}
                Some(_) => return Err(format!("order {order_id} is PENDING: not archivable")),
                None => return Err(format!("user {} has no order {order_id}", self.id)),
            }
        }
        for order_id in order_ids {
            self.orders.remove(order_id);
        }
        Ok(order_ids.len() as u64)
    }

    pub fn cancel(&mut self, order_id: OrderId) -> Result<&Order, CancelError> {
        let order = self
            .orders
            .get_mut(&order_id)
            .ok_or(CancelError::OrderNotFound(order_id))?;
        if order.status != OrderStatus::Pending {
            return Err(CancelError::NotCancellable {
                order_id,
                status: order.status,
            });
        }
        order.status = OrderStatus::Cancelled;
        Ok(order)
    }

    /// Pays a PENDING order: debits the balance, uses the coupon, marks the order PAID — all of
    /// it or, on any error, none of it. The caller expires a past-deadline order first.
    pub fn pay(
        &mut self,
        order_id: OrderId,
        coupon_id: Option<CouponId>,
        now: Timestamp,
    ) -> Result<Payment, PaymentError> {
        let total = self.payable(order_id)?.total_amount;
        let discount = match coupon_id {
            Some(coupon_id) => self
                .usable_coupon(coupon_id, now)?
                .discount
                .amount_off(total),
            None => 0,
        };
        self.mark_paid(order_id, coupon_id, discount, total - discount, now)
    }

    /// The payment itself, with the amounts already worked out (`pay` does that; journal replay
    /// passes the recorded ones). Checks again that everything holds, then changes it all.
    pub fn mark_paid(
        &mut self,
        order_id: OrderId,
        coupon_id: Option<CouponId>,
        discount: Won,
        paid: Won,
        now: Timestamp,
    ) -> Result<Payment, PaymentError> {
        let total = self.payable(order_id)?.total_amount;
        if let Some(coupon_id) = coupon_id {
            self.usable_coupon(coupon_id, now)?;
        }
        if self.balance < paid {
            return Err(PaymentError::InsufficientBalance {
                balance: self.balance,
                needed: paid,
            });
        }
        // Every check has passed: from here on nothing can fail.
        self.balance -= paid;
        self.paid = self.paid.saturating_add(paid);
        if let Some(coupon_id) = coupon_id {
            let coupon = self.coupons.get_mut(&coupon_id).expect("checked above");
            coupon.status = CouponStatus::Used;
            coupon.used_at = Some(now);
            coupon.order_id = Some(order_id);
        }
        let order = self.orders.get_mut(&order_id).expect("checked above");
        order.status = OrderStatus::Paid;
        order.coupon_id = coupon_id;
        order.discount_amount = Some(discount);
        order.paid_amount = Some(paid);
        order.paid_at = Some(now);
        Ok(Payment {
            order_id,
            status: OrderStatus::Paid,
            total_amount: total,
            discount_amount: discount,
            paid_amount: paid,
            balance: self.balance,
            coupon_id,
            paid_at: now,
        })
    }

    /// The order, if it exists and is PENDING.
    fn payable(&self, order_id: OrderId) -> Result<&Order, PaymentError> {
        let order = self
            .orders
            .get(&order_id)
            .ok_or(PaymentError::OrderNotFound(order_id))?;
        match order.status {
            OrderStatus::Pending => Ok(order),
            OrderStatus::Paid => Err(PaymentError::AlreadyPaid(order_id)),
            OrderStatus::Expired => Err(PaymentError::OrderExpired(order_id)),
            OrderStatus::Cancelled => Err(PaymentError::Cancelled(order_id)),
        }
    }

    /// Stores a new PENDING order (its stock is already reserved).
    pub fn add_order(&mut self, order: Order) -> Result<(), String> {
        match self.orders.entry(order.order_id) {
            std::collections::btree_map::Entry::Occupied(_) => {
                Err(format!("order {} exists already", order.order_id))
            }
            std::collections::btree_map::Entry::Vacant(vacant) => {
                vacant.insert(order);
                Ok(())
            }
        }
    }

    /// Keeps a coupon issued to this user. A coupon it holds already stays as it is: a coupon
    /// handed over again (by a coupon restored after a failure) is never made unused again.
    pub fn receive_coupon(&mut self, coupon: UserCoupon) {
        self.coupons.entry(coupon.coupon_id).or_insert(coupon);
    }

    fn usable_coupon(
        &self,
        coupon_id: CouponId,
        now: Timestamp,
    ) -> Result<&UserCoupon, PaymentError> {
        let not_usable = |reason| PaymentError::CouponNotUsable { coupon_id, reason };
        let coupon = self
            .coupons
            .get(&coupon_id)
            .ok_or(not_usable("the user does not hold it"))?;
        if coupon.status == CouponStatus::Used {
            return Err(not_usable("it was already used"));
        }
        if coupon.is_expired_at(now) {
            return Err(not_usable("it has expired"));
        }
        Ok(coupon)
    }

    /// A page of the user's orders, newest first: at most `limit` with ids below `before`
    /// (all, when `None`), and the id to pass as `before` for the next page, if there is one.
    pub fn orders_page(
        &self,
        limit: usize,
        before: Option<OrderId>,
    ) -> (Vec<Order>, Option<OrderId>) {
        let below = before.unwrap_or(OrderId::MAX);
        let mut page: Vec<Order> = self
            .orders
            .range(..below)
            .rev()
            .take(limit.saturating_add(1))
            .map(|(_, order)| order.clone())
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let next_before = more
            .then(|| page.last().map(|order| order.order_id))
            .flatten();
        (page, next_before)
    }
}

/// A user whose actor is not running, as the directory keeps it: its id is the directory's
/// key and its balance the published one, so with no orders or coupons this is 32 bytes.
#[derive(Clone, Debug)]
pub struct PassiveUser {
    initial_balance: Won,
    charged: Won,
    paid: Won,
    holdings: Option<Box<Holdings>>,
}

/// A passive user's coupons and orders, when it has any.
#[derive(Clone, Debug)]
struct Holdings {
    coupons: BTreeMap<CouponId, UserCoupon>,
    orders: BTreeMap<OrderId, Order>,
}

impl PassiveUser {
    /// Splits a user's state into its balance and the rest.
    pub fn from_state(state: UserState) -> (Won, PassiveUser) {
        let holdings = (!state.coupons.is_empty() || !state.orders.is_empty()).then(|| {
            Box::new(Holdings {
                coupons: state.coupons,
                orders: state.orders,
            })
        });
        let passive = PassiveUser {
            initial_balance: state.initial_balance,
            charged: state.charged,
            paid: state.paid,
            holdings,
        };
        (state.balance, passive)
    }

    /// The whole state again, for user `id` with `balance`.
    pub fn into_state(self, id: UserId, balance: Won) -> UserState {
        let (coupons, orders) = match self.holdings {
            Some(holdings) => (holdings.coupons, holdings.orders),
            None => (BTreeMap::new(), BTreeMap::new()),
        };
        UserState {
            id,
            balance,
            initial_balance: self.initial_balance,
            charged: self.charged,
            paid: self.paid,
            coupons,
            orders,
        }
    }

    /// A copy of the whole state, for user `id` with `balance`.
    pub fn to_state(&self, id: UserId, balance: Won) -> UserState {
        self.clone().into_state(id, balance)
    }
}

#[cfg(test)]
mod tests;
