//! The user actor: one per user, owner of the user's balance, held coupons and orders.
//!
//! Orders live with their buyer on purpose. Paying touches three things — the balance, the
//! coupon and the order's status — and keeping all three in one actor makes a payment a single
//! message: it is atomic without a two-phase protocol, and pay / expire / cancel of one order
//! are serialised here, so exactly one of them wins. The order supervisor only keeps deadlines.
//!
//! Follow-up effects on other actors (commit or release stock, sales statistics, data
//! platform) are cast *before* the reply is sent. Mailboxes are FIFO, so anyone who hears the
//! reply and then asks those actors sees the effect (see `src/kernel/gate.rs`).

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::clock::Timestamp;
use crate::domain::user::{CancelError, ChargeError, PaymentError, UserState};
use crate::kernel::actors::Links;
use crate::kernel::actors::data_platform::DataPlatformMessage;
use crate::kernel::actors::product::ProductMessage;
use crate::kernel::actors::sales::SalesMessage;
use crate::model::{
    CouponId, Order, OrderId, OrderPaid, OrderStatus, Payment, ProductId, UserCoupon, UserId, Won,
};
use crate::wire::Record;

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
                self.links.recorder.reply(reply, charged);
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
                self.links.recorder.reply(reply, result);
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
                self.links.recorder.reply(reply, result);
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
