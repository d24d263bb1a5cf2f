//! The user actor: one per user, owner of the user's balance, held coupons and orders.
//!
//! Orders live with their buyer on purpose. Paying touches three things — the balance, the
//! coupon and the order's status — and keeping all three in one actor makes a payment a single
//! message: it is atomic without a two-phase protocol, and pay / expire / cancel of one order
//! are serialised here, so exactly one of them wins. The order supervisor only keeps deadlines.
//!
//! The buyer also owns its placements: it takes one of its pending-order slots, hands the
//! placement to the first product, which reserves and passes it on to the next, and the last
//! one hands it back; the buyer then records the order (`Placement`). Nobody waits for
//! anybody on the way: each step is a message passed on with `Directory::forward`, which
//! never waits even for a passivating receiver, and the reply leaves with the last step.
//!
//! Follow-up effects on other actors (commit stock, sales statistics, data platform) are cast
//! *before* the reply is sent. Mailboxes are FIFO, so anyone who hears the reply and then asks
//! those actors sees the effect (see `src/kernel/gate.rs`). An order that ends while PENDING
//! (cancelled, expired) releases its stock product after product, and the reply travels with
//! the releases (`Releases`): it leaves once the last product has released.

use std::collections::VecDeque;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::clock::Timestamp;
use crate::domain::product::{StockError, StockLine};
use crate::domain::state::EngineState;
use crate::domain::user::{CancelError, ChargeError, PaymentError, UserState};
use crate::error::EngineError;
use crate::kernel::actors::Links;
use crate::kernel::actors::data_platform::DataPlatformMessage;
use crate::kernel::actors::order_supervisor::SupervisorMessage;
use crate::kernel::actors::product::{ProductMessage, Releases, Then};
use crate::kernel::actors::sales::SalesMessage;
use crate::kernel::directory::Kind;
use crate::kernel::gate::Admission;
use crate::model::{
    CouponId, Order, OrderId, OrderPaid, OrderStatus, Payment, ProductId, UserCoupon, UserId, Won,
};
use crate::wire::Record;
use crate::wire::snapshot::OrderV1;

/// An order placement on its way: buyer -> each product in turn -> buyer.
pub struct Placement {
    /// The PENDING order, priced and with its id; it exists once the buyer records it.
    pub order: Order,
    /// The stock each product is asked to reserve, in the order they are asked. A product
    /// takes its lines out as it reserves them.
    pub stock: Vec<(ProductId, Vec<StockLine>)>,
    /// How many of `stock`'s products have reserved so far.
    pub reserved: usize,
    pub reply: RpcReplyPort<Result<Order, EngineError>>,
    /// The command is in flight until the placement ends (`src/kernel/gate.rs`).
    pub admission: Admission,
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
    /// Places an order: takes a pending-order slot (or replies `TooManyPendingOrders`) and
    /// hands the placement to its first product.
    Place(Placement),
    /// Every product reserved: the order is recorded, watched for its deadline, and the reply
    /// leaves once it is durable.
    Placed(Placement),
    /// A product refused: the slot is given back, the products that reserved release, and the
    /// refusal leaves after the last release.
    Refused(Placement, StockError),
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
        admission: Admission,
    },
    /// Cancels a PENDING order and releases its stock; fails with `NotCancellable` otherwise.
    Cancel {
        order_id: OrderId,
        now: Timestamp,
        reply: RpcReplyPort<Result<Order, CancelError>>,
        admission: Admission,
    },
    /// A deadline hint from the order supervisor: expires the order if it is still PENDING and
    /// due, releasing its stock. No reply: the admission is dropped after the last release.
    Expire {
        order_id: OrderId,
        now: Timestamp,
        admission: Admission,
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

    /// Releases `products`' reservations for `order_id` one product after another, then runs
    /// `then` (see `Releases`); with no product, runs it once what it rests on is durable.
    fn release_then(&self, order_id: OrderId, products: VecDeque<ProductId>, then: Then) {
        let releases = Releases {
            order_id,
            products,
            then,
        };
        releases.forward(&self.links.directory, &self.links.recorder);
    }

    /// A PENDING order ended (paid, expired or cancelled): its slot is free again, its
    /// deadline no longer watched, and the archive may take it later.
    fn pending_ended(&self, user_id: UserId, order_id: OrderId) {
        self.links.directory.release_pending_slot(user_id);
        let _ = self
            .links
            .deadlines
            .cast(SupervisorMessage::Disarm { order_id });
        self.links.order_ended(user_id, order_id);
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

    /// Expires the order if it is PENDING and due at `now`; returns the products whose stock
    /// it held (for the caller to release, its reply travelling with the releases).
    fn expire_if_due(
        &self,
        state: &mut UserState,
        order_id: OrderId,
        now: Timestamp,
    ) -> Option<VecDeque<ProductId>> {
        let order = state.expire_if_due(order_id, now)?;
        self.links.recorder.record(|| Record::OrderExpired {
            user_id: order.user_id,
            order_id,
            at: now.0,
        });
        self.pending_ended(order.user_id, order_id);
        self.links.metrics.orders_expired.increment(1);
        Some(products_of(order))
    }

    /// Takes a pending-order slot and hands the placement to its first product.
    fn place(&self, state: &UserState, placement: Placement) {
        let limit = self.links.limits.max_pending_orders_per_user;
        let user_id = state.id;
        if self.links.directory.take_pending_slot(user_id, limit) != Some(true) {
            let refused = Err(EngineError::TooManyPendingOrders { user_id, limit });
            self.links.recorder.reply(placement.reply, refused);
            return;
        }
        let first = placement.stock[0].0;
        let reserve = ProductMessage::Reserve(placement);
        self.links.directory.forward(first, reserve);
    }

    /// Every product reserved: records the order, which exists from here on.
    fn placed(&self, state: &mut UserState, placement: Placement) {
        self.links.directory.placement_placed(state.id);
        let Placement {
            order,
            reply,
            admission,
            ..
        } = placement;
        let (user_id, order_id) = (order.user_id, order.order_id);
        self.links.recorder.record(|| Record::OrderPlaced {
            user_id,
            order: OrderV1::from_order(&order),
        });
        self.links.directory.insert_order(order_id, user_id);
        let _ = self.links.deadlines.cast(SupervisorMessage::Arm {
            order_id,
            user_id,
            expires_at: order.expires_at,
        });
        if let Err(error) = state.add_order(order.clone()) {
            tracing::error!(user_id, %error, "an order was placed twice");
        }
        self.links.recorder.reply(reply, Ok(order));
        drop(admission);
    }

    /// A product refused: gives the slot back and releases what was reserved, the refusal
    /// travelling with the releases.
    fn refused(&self, state: &UserState, placement: Placement, error: StockError) {
        self.links.directory.placement_refused(state.id);
        let Placement {
            order,
            stock,
            reserved,
            reply,
            admission,
        } = placement;
        let products = stock[..reserved].iter().map(|(id, _)| *id).collect();
        let then = move || {
            let _ = reply.send(Err(EngineError::from(error)));
            drop(admission);
        };
        self.release_then(order.order_id, products, Box::new(then));
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

/// The distinct products an order holds stock of, ascending.
fn products_of(order: &Order) -> VecDeque<ProductId> {
    let products: std::collections::BTreeSet<ProductId> =
        order.items.iter().map(|item| item.product_id).collect();
    products.into_iter().collect()
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

    /// Runs the message's handler under supervision: if it fails, the user is restored.
    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let key = (Kind::User, state.id);
        // The PENDING order this message may end: if it fails, the restore finishes ending it.
        let ending = match &message {
            UserMessage::Pay { order_id, .. }
            | UserMessage::Cancel { order_id, .. }
            | UserMessage::Expire { order_id, .. } => Some(*order_id),
            _ => None,
        };
        let pending = |order_id| {
            let order = state.orders.get(&order_id);
            order.is_some_and(|order| order.status == OrderStatus::Pending)
        };
        let ending = ending.filter(|&order_id| pending(order_id));
        let supervision = &self.links.supervision;
        let mut settled = false;
        let handled = async {
            self.dispatch(message, state, &mut settled).await?;
            supervision.injected(key, state);
            Ok(())
        };
        if supervision.run(key, handled).await.is_err() {
            self.restore(state, ending, settled).await?;
        }
        self.links.directory.handled::<UserMessage>(key.1);
        Ok(())
    }
}

impl UserActor {
    /// Handles one message: a branch per kind, each calling the methods above. `settled` is
    /// set once a payment's follow-ups are all sent (what a restore must not send twice).
    async fn dispatch(
        &self,
        message: UserMessage,
        state: &mut UserState,
        settled: &mut bool,
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
            UserMessage::Place(placement) => self.place(state, placement),
            UserMessage::Placed(placement) => self.placed(state, placement),
            UserMessage::Refused(placement, error) => {
                self.refused(state, placement, error);
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
                admission,
            } => {
                let expired = self.expire_if_due(state, order_id, now).unwrap_or_default();
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
                    self.pending_ended(state.id, order_id);
                    self.settle_payment(&state.orders[&order_id]).await;
                    *settled = true;
                    self.publish_balance(state);
                    self.links.metrics.orders_paid.increment(1);
                }
                let then = move || {
                    let _ = reply.send(result);
                    drop(admission);
                };
                self.release_then(order_id, expired, Box::new(then));
            }
            UserMessage::Cancel {
                order_id,
                now,
                reply,
                admission,
            } => {
                let mut releases = self.expire_if_due(state, order_id, now).unwrap_or_default();
                let result = state.cancel(order_id).cloned();
                if let Ok(order) = &result {
                    self.links.recorder.record(|| Record::OrderCancelled {
                        user_id: order.user_id,
                        order_id,
                    });
                    self.pending_ended(order.user_id, order_id);
                    self.links.metrics.orders_cancelled.increment(1);
                    releases = products_of(order);
                }
                let then = move || {
                    let _ = reply.send(result);
                    drop(admission);
                };
                self.release_then(order_id, releases, Box::new(then));
            }
            UserMessage::Expire {
                order_id,
                now,
                admission,
            } => {
                let releases = self.expire_if_due(state, order_id, now).unwrap_or_default();
                let then = move || drop(admission);
                self.release_then(order_id, releases, Box::new(then));
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
        Ok(())
    }

    /// Takes the user's state as the journal has it, after a handler failed
    /// (`src/kernel/supervision.rs`): publishes its balance again, counts its pending-order
    /// slots again from its orders (the failed handler may have ended an order without giving
    /// its slot back), indexes its orders and arms the deadlines of the PENDING ones (it may
    /// have recorded an order without arming it; arming twice only sets a deadline to itself).
    /// If the failed message was about order `ending`, PENDING before it, and the journal has
    /// that order ended,
    /// what ending it sets off on other actors is done again: its deadline dropped (harmless
    /// twice); a PAID order's payment settled unless the failed handler had `settled` it (its
    /// stock commits are harmless twice, its sale and delivery are not); an EXPIRED or
    /// CANCELLED order's stock released (harmless twice).
    async fn restore(
        &self,
        state: &mut UserState,
        ending: Option<OrderId>,
        settled: bool,
    ) -> Result<(), ActorProcessingErr> {
        let user_id = state.id;
        let read = move |replica: &EngineState| replica.users.get(&user_id).cloned();
        let supervision = &self.links.supervision;
        let Some(restored) = supervision.durable((Kind::User, user_id), read).await? else {
            return Ok(());
        };
        *state = restored;
        self.publish_balance(state);
        let pending = state.orders.values();
        let pending = pending.filter(|order| order.status == OrderStatus::Pending);
        let pending = pending.count() as u64;
        self.links.directory.recount_pending_slots(user_id, pending);
        for order in state.orders.values() {
            self.links.directory.insert_order(order.order_id, user_id);
            if order.status == OrderStatus::Pending {
                let _ = self.links.deadlines.cast(SupervisorMessage::Arm {
                    order_id: order.order_id,
                    user_id,
                    expires_at: order.expires_at,
                });
            }
        }
        let ended = ending.and_then(|order_id| state.orders.get(&order_id));
        let Some(order) = ended.filter(|order| order.status != OrderStatus::Pending) else {
            return Ok(());
        };
        let order_id = order.order_id;
        let _ = self
            .links
            .deadlines
            .cast(SupervisorMessage::Disarm { order_id });
        if order.status == OrderStatus::Paid {
            if !settled {
                self.settle_payment(order).await;
            }
        } else {
            self.release_then(order_id, products_of(order), Box::new(|| {}));
        }
        Ok(())
    }
}
