//! The user actor: one per user, owner of the user's balance, held coupons and orders.
//!
//! Orders live with their buyer on purpose. Paying touches three things — the balance, the
//! coupon and the order's status — and keeping all three in one actor makes a payment a single
//! message: it is atomic without a two-phase protocol, and pay / expire / cancel of one order
//! are serialised here, so exactly one of them wins. The order supervisor only keeps deadlines.
//!
//! Follow-up effects on other actors (commit or release stock, sales statistics, data
//! platform) are cast *before* the reply is sent. Mailboxes are FIFO, so anyone who hears the
//! reply and then asks those actors sees the effect (see `src/gate.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use thiserror::Error;

use crate::actors::Links;
use crate::actors::data_platform::DataPlatformMessage;
use crate::actors::product::ProductMessage;
use crate::actors::sales::SalesMessage;
use crate::clock::Timestamp;
use crate::error::Code;
use crate::journal::Record;
use crate::model::{
    CouponId, CouponStatus, Order, OrderId, OrderPaid, OrderStatus, Payment, ProductId, UserCoupon,
    UserId, Won,
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

    /// Keeps a coupon issued to this user.
    pub fn receive_coupon(&mut self, coupon: UserCoupon) {
        self.coupons.insert(coupon.coupon_id, coupon);
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

/// The user actor's whole API.
pub enum UserMessage {
    /// Adds points; replies with the balance after. Fails with `BalanceLimitExceeded`.
    Charge {
        amount: Won,
        reply: RpcReplyPort<Result<Won, ChargeError>>,
    },
    /// Replies with the held coupons as seen at `now` (unused and past expiry: EXPIRED).
    Coupons {
        now: Timestamp,
        reply: RpcReplyPort<Vec<UserCoupon>>,
    },
    /// Cast by a coupon actor that issued this coupon to the user. No reply.
    ReceiveCoupon(UserCoupon),
    /// Stores a new PENDING order whose stock is already reserved. No reply.
    AddOrder(Order),
    /// Replies with one order, if the user has it.
    Order {
        order_id: OrderId,
        reply: RpcReplyPort<Option<Order>>,
    },
    /// Replies with a page of the user's orders, newest first, and the `before` of the next
    /// page (see `UserState::orders_page`).
    Orders {
        limit: usize,
        before: Option<OrderId>,
        reply: RpcReplyPort<(Vec<Order>, Option<OrderId>)>,
    },
    /// Pays an order, optionally with a held coupon. A past-deadline order is expired on the
    /// spot and the reply is `OrderExpired`. On success, commits the stock, records the sale and
    /// hands the order to the data platform.
    Pay {
        order_id: OrderId,
        coupon_id: Option<CouponId>,
        now: Timestamp,
        reply: RpcReplyPort<Result<Payment, PaymentError>>,
    },
    /// Cancels a PENDING order and releases its stock; fails with `NotCancellable` otherwise.
    Cancel {
        order_id: OrderId,
        now: Timestamp,
        reply: RpcReplyPort<Result<Order, CancelError>>,
    },
    /// A deadline hint from the order supervisor: expires the order if it is still PENDING and
    /// due, releasing its stock. Replies whether it expired it.
    Expire {
        order_id: OrderId,
        now: Timestamp,
        reply: RpcReplyPort<bool>,
    },
    /// Replies with a copy of the whole state (the admin audit).
    Read(RpcReplyPort<UserState>),
    /// Replies with those of `order_ids` that the user holds and that have ended (the
    /// archivist, before storing them).
    Ended {
        order_ids: Vec<OrderId>,
        reply: RpcReplyPort<Vec<Order>>,
    },
    /// The archive durably holds these ended orders: drop them from memory and record it.
    /// No reply.
    Archived { order_ids: Vec<OrderId> },
}

pub struct UserActor {
    pub links: Arc<Links>,
    /// When the directory asked for this actor (its activation latency ends in `pre_start`).
    pub activated_at: tokio::time::Instant,
}

impl UserActor {
    /// Publishes the balance (`GET points` reads it without a message), after every change
    /// and before the reply.
    fn publish_balance(&self, state: &UserState) {
        self.links
            .directory
            .publish_balance(state.id, state.balance);
    }

    /// An order stopped being PENDING: one of the user's pending-order slots is free again.
    fn release_slot(&self, user_id: UserId) {
        self.links.directory.release_pending_slot(user_id);
    }

    /// Releases the order's stock on each of its products and waits until each has applied
    /// it: whoever sees the order EXPIRED or CANCELLED (in a reply from here, or in a read
    /// queued behind this message) sees its stock orderable again.
    async fn release_stock(&self, order: &Order) {
        let order_id = order.order_id;
        for product_id in products_of(order) {
            let released = self
                .links
                .directory
                .ask(product_id, |reply| ProductMessage::Release {
                    order_id,
                    reply: Some(reply),
                })
                .await;
            if let Err(error) = released {
                tracing::error!(order_id, product_id, ?error, "could not release stock");
            }
        }
    }

    async fn settle_payment(&self, order: &Order) {
        let order_id = order.order_id;
        for product_id in products_of(order) {
            let commit = ProductMessage::Commit { order_id };
            if let Err(error) = self.links.directory.send(product_id, commit).await {
                tracing::error!(order_id, product_id, ?error, "could not commit stock");
            }
        }
        let Some(record) = OrderPaid::of(order) else {
            return;
        };
        let _ = self.links.sales.cast(SalesMessage::Record {
            day: record.paid_at.day(),
            lines: order
                .items
                .iter()
                .map(|item| (item.product_id, u64::from(item.quantity)))
                .collect(),
        });
        let _ = self
            .links
            .data_platform
            .cast(DataPlatformMessage::Deliver(record));
    }

    async fn expire_if_due(
        &self,
        state: &mut UserState,
        order_id: OrderId,
        now: Timestamp,
    ) -> bool {
        let Some(order) = state.expire_if_due(order_id, now) else {
            return false;
        };
        self.links.recorder.record(|| Record::OrderExpired {
            user_id: order.user_id,
            order_id,
            at: now.0,
        });
        self.release_slot(order.user_id);
        self.release_stock(order).await;
        self.links.order_ended(order.user_id, order_id);
        self.links.metrics.orders_expired.increment(1);
        true
    }

    /// Drops ended orders the archive now holds, and records it.
    fn archived(&self, state: &mut UserState, order_ids: Vec<OrderId>) -> Result<(), String> {
        let removed = state.archive(&order_ids)?;
        for order_id in &order_ids {
            self.links.directory.remove_order(*order_id);
        }
        let user_id = state.id;
        self.links
            .recorder
            .record(|| Record::OrdersArchived { user_id, order_ids });
        self.links
            .archived_orders
            .fetch_add(removed, std::sync::atomic::Ordering::SeqCst);
        self.links.metrics.orders_archived.increment(removed);
        Ok(())
    }
}

/// The distinct products an order holds stock of.
fn products_of(order: &Order) -> std::collections::BTreeSet<ProductId> {
    order.items.iter().map(|item| item.product_id).collect()
}

impl Actor for UserActor {
    type Msg = UserMessage;
    type State = UserState;
    type Arguments = UserState;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: UserState,
    ) -> Result<Self::State, ActorProcessingErr> {
        self.links.directory.activated(self.activated_at);
        Ok(state)
    }

    /// Hands the state back to the directory: the user is passive again.
    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let state = std::mem::replace(state, UserState::new(state.id, 0));
        self.links.directory.user_stopped(myself.get_id(), state);
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            UserMessage::Charge { amount, reply } => {
                let charged = state.charge(amount, self.links.limits.max_balance);
                if charged.is_ok() {
                    let user_id = state.id;
                    self.links
                        .recorder
                        .record(|| Record::Charged { user_id, amount });
                    self.links.metrics.charges.increment(1);
                    self.links.metrics.charged_points.increment(amount);
                }
                self.publish_balance(state);
                let _ = reply.send(charged);
            }
            UserMessage::Coupons { now, reply } => {
                let coupons = state.coupons.values().map(|c| c.view_at(now)).collect();
                let _ = reply.send(coupons);
            }
            UserMessage::ReceiveCoupon(coupon) => state.receive_coupon(coupon),
            UserMessage::AddOrder(order) => {
                if let Err(error) = state.add_order(order) {
                    tracing::error!(user_id = state.id, %error, "an order was added twice");
                }
            }
            UserMessage::Order { order_id, reply } => {
                let _ = reply.send(state.orders.get(&order_id).cloned());
            }
            UserMessage::Orders {
                limit,
                before,
                reply,
            } => {
                let _ = reply.send(state.orders_page(limit, before));
            }
            UserMessage::Pay {
                order_id,
                coupon_id,
                now,
                reply,
            } => {
                self.expire_if_due(state, order_id, now).await;
                let result = state.pay(order_id, coupon_id, now);
                if let Ok(payment) = &result {
                    self.links.recorder.record(|| Record::OrderPaid {
                        user_id: state.id,
                        order_id,
                        coupon_id,
                        discount_amount: payment.discount_amount,
                        paid_amount: payment.paid_amount,
                        paid_at: payment.paid_at.0,
                    });
                    self.release_slot(state.id);
                    self.settle_payment(&state.orders[&order_id]).await;
                    self.publish_balance(state);
                    self.links.order_ended(state.id, order_id);
                    self.links.metrics.orders_paid.increment(1);
                }
                let _ = reply.send(result);
            }
            UserMessage::Cancel {
                order_id,
                now,
                reply,
            } => {
                self.expire_if_due(state, order_id, now).await;
                let result = state.cancel(order_id).cloned();
                if let Ok(order) = &result {
                    self.links.recorder.record(|| Record::OrderCancelled {
                        user_id: order.user_id,
                        order_id,
                    });
                    self.release_slot(order.user_id);
                    self.release_stock(order).await;
                    self.links.order_ended(order.user_id, order_id);
                    self.links.metrics.orders_cancelled.increment(1);
                }
                let _ = reply.send(result);
            }
            UserMessage::Expire {
                order_id,
                now,
                reply,
            } => {
                let _ = reply.send(self.expire_if_due(state, order_id, now).await);
            }
            UserMessage::Read(reply) => {
                let _ = reply.send(state.clone());
            }
            UserMessage::Ended { order_ids, reply } => {
                let ended = order_ids
                    .iter()
                    .filter_map(|order_id| state.orders.get(order_id))
                    .filter(|order| order.status != OrderStatus::Pending)
                    .cloned()
                    .collect();
                let _ = reply.send(ended);
            }
            UserMessage::Archived { order_ids } => {
                let archivable: Vec<OrderId> = order_ids
                    .into_iter()
                    .filter(|id| {
                        state
                            .orders
                            .get(id)
                            .is_some_and(|o| o.status != OrderStatus::Pending)
                    })
                    .collect();
                if !archivable.is_empty() {
                    self.archived(state, archivable)?;
                }
            }
        }
        self.links.directory.handled::<UserMessage>(state.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
