//! The buyer's use cases: points, coupons, orders and payment (docs/spec.md §1, cases 1, 2 and
//! 4 to 7). Each admits itself through the gate and asks the actors that own the state.

use std::collections::{BTreeMap, BTreeSet};

use super::Engine;
use crate::domain::product::{StockError, StockLine};
use crate::domain::user::{CancelError, PaymentError};
use crate::error::EngineError;
use crate::kernel::actors::coupon::CouponMessage;
use crate::kernel::actors::product::ProductMessage;
use crate::kernel::actors::user::{Placement, UserMessage};
use crate::kernel::directory::ProductEntry;
use crate::metrics::Attempt;
use crate::model::{
    CouponId, CouponView, OptionId, Order, OrderId, OrderItem, OrderStatus, Payment, ProductId,
    UserCoupon, UserId, Won,
};

/// One requested line of an order. `option_id` may be left out for a one-option product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub option_id: Option<OptionId>,
    pub quantity: u64,
}

/// A line checked against the catalog: the product it names and its option.
struct ResolvedLine<'a> {
    product: &'a ProductEntry,
    option_id: OptionId,
    quantity: u64,
}

impl Engine {
    /// Asks user `user_id` (unknown: USER_NOT_FOUND).
    async fn ask_user<R: Send + 'static>(
        &self,
        user_id: UserId,
        message: impl FnOnce(ractor::RpcReplyPort<R>) -> UserMessage,
    ) -> Result<R, EngineError> {
        self.ask(user_id, EngineError::UserNotFound(user_id), message)
            .await
    }

    /// The balance the user's actor last published: no message, no wait. Read-your-writes
    /// holds, since the actor publishes before it replies to a charge or a payment.
    pub async fn balance(&self, user_id: UserId) -> Result<Won, EngineError> {
        self.directory()
            .balance(user_id)
            .ok_or(EngineError::UserNotFound(user_id))
    }

    /// Adds `amount` points: positive and at most `limits.max_charge`, or `InvalidAmount`.
    pub async fn charge(&self, user_id: UserId, amount: Won) -> Result<Won, EngineError> {
        let max_charge = self.links().limits.max_charge;
        if amount == 0 || amount > max_charge {
            return Err(EngineError::InvalidAmount(format!(
                "amount must be a positive integer of at most {max_charge}, got {amount}"
            )));
        }
        // The user's actor replies once the charge is durable (`Recorder::reply`).
        let charged = self
            .ask_user(user_id, |reply| UserMessage::Charge { amount, reply })
            .await?;
        charged.map_err(EngineError::from)
    }

    /// First come, first served. The user is looked up before the coupon is asked, so a unit
    /// is only taken for a user who exists.
    pub async fn issue_coupon(
        &self,
        coupon_id: CouponId,
        user_id: UserId,
    ) -> Result<UserCoupon, EngineError> {
        let issued = self.issue_coupon_once(coupon_id, user_id).await;
        self.count_attempt(Attempt::CouponIssue, &issued);
        issued
    }

    async fn issue_coupon_once(
        &self,
        coupon_id: CouponId,
        user_id: UserId,
    ) -> Result<UserCoupon, EngineError> {
        let admission = self.links().gate.enter().await;
        if !self.directory().has_coupon(coupon_id) {
            return Err(EngineError::CouponNotFound(coupon_id));
        }
        if !self.directory().has_user(user_id) {
            return Err(EngineError::UserNotFound(user_id));
        }
        let now = self.clock().now();
        let issued = self
            .ask(coupon_id, EngineError::CouponNotFound(coupon_id), |reply| {
                CouponMessage::Issue {
                    user_id,
                    now,
                    reply,
                    admission,
                }
            })
            .await?;
        // The coupon's actor replied once the issue was durable.
        issued.map_err(EngineError::from)
    }

    pub async fn coupon(&self, coupon_id: CouponId) -> Result<CouponView, EngineError> {
        self.ask(
            coupon_id,
            EngineError::CouponNotFound(coupon_id),
            CouponMessage::View,
        )
        .await
    }

    pub async fn user_coupons(&self, user_id: UserId) -> Result<Vec<UserCoupon>, EngineError> {
        let now = self.clock().now();
        self.ask_user(user_id, |reply| UserMessage::Coupons { now, reply })
            .await
    }

    /// Places an order: the buyer takes one of its pending-order slots (so concurrent orders
    /// of one user never pass `limits.max_pending_orders_per_user` together), each product
    /// reserves its lines in turn, all or nothing, and the buyer records the PENDING order and
    /// has its deadline watched (`Placement` in `src/kernel/actors/user.rs`).
    ///
    /// Once the buyer has the placement, the actors carry it to the end even if this caller
    /// goes away (a dropped HTTP connection): stock is never left reserved for nobody.
    pub async fn place_order(
        &self,
        user_id: UserId,
        lines: Vec<OrderLine>,
    ) -> Result<Order, EngineError> {
        let placed = self.place_order_once(user_id, lines).await;
        self.count_attempt(Attempt::Order, &placed);
        placed
    }

    async fn place_order_once(
        &self,
        user_id: UserId,
        lines: Vec<OrderLine>,
    ) -> Result<Order, EngineError> {
        self.check_order_shape(&lines)?;
        let admission = self.links().gate.enter().await;
        if !self.directory().has_user(user_id) {
            return Err(EngineError::UserNotFound(user_id));
        }
        let products = lines
            .iter()
            .map(|line| {
                self.directory()
                    .product(line.product_id)
                    .ok_or(EngineError::ProductNotFound(line.product_id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let resolved = resolve_lines(&lines, &products)?;
        let items = order_items(&resolved)?;
        let now = self.clock().now();
        let order = Order {
            order_id: self.next_order_id(),
            user_id,
            status: OrderStatus::Pending,
            total_amount: items.iter().map(|item| item.line_total).sum(),
            items,
            coupon_id: None,
            discount_amount: None,
            paid_amount: None,
            created_at: now,
            expires_at: now.saturating_add(self.inner.order_expiry),
            paid_at: None,
        };
        let stock = stock_by_product(&resolved);
        // The buyer replies once the order (or what a refusal rests on) is durable.
        self.ask_user(user_id, |reply| {
            UserMessage::Place(Placement {
                order,
                stock,
                reserved: 0,
                reply,
                admission,
            })
        })
        .await?
    }

    fn check_order_shape(&self, lines: &[OrderLine]) -> Result<(), EngineError> {
        let limits = self.links().limits;
        if lines.is_empty() || lines.len() > limits.max_order_items {
            return Err(EngineError::InvalidOrder(format!(
                "an order needs 1 to {} items, got {}",
                limits.max_order_items,
                lines.len()
            )));
        }
        if let Some(line) = lines
            .iter()
            .find(|line| line.quantity == 0 || line.quantity > limits.max_item_quantity)
        {
            return Err(EngineError::InvalidOrder(format!(
                "product {}: quantity must be 1 to {}, got {}",
                line.product_id, limits.max_item_quantity, line.quantity
            )));
        }
        Ok(())
    }

    /// Asks product `product_id` (unknown: PRODUCT_NOT_FOUND).
    pub(super) async fn ask_product<R: Send + 'static>(
        &self,
        product_id: ProductId,
        message: impl FnOnce(ractor::RpcReplyPort<R>) -> ProductMessage,
    ) -> Result<R, EngineError> {
        self.ask(
            product_id,
            EngineError::ProductNotFound(product_id),
            message,
        )
        .await
    }

    /// Finds an order by id alone (through the directory's order → buyer index).
    /// One order, from memory or, once it has moved there, from the archive.
    pub async fn order(&self, order_id: OrderId) -> Result<Order, EngineError> {
        if let Some(user_id) = self.directory().buyer_of(order_id) {
            let order = self
                .ask_user(user_id, |reply| UserMessage::Order { order_id, reply })
                .await?;
            if let Some(order) = order {
                return Ok(order);
            }
        }
        self.archived_order(order_id, None)
            .await?
            .ok_or(EngineError::OrderNotFound(order_id))
    }

    /// A page of the user's orders, newest first: at most `limit` with ids below `before`, and
    /// the `before` of the next page (`None` on the last one).
    pub async fn user_orders(
        &self,
        user_id: UserId,
        limit: usize,
        before: Option<OrderId>,
    ) -> Result<(Vec<Order>, Option<OrderId>), EngineError> {
        // One more than the page from each place says whether another page follows.
        let (mut orders, _) = self
            .ask_user(user_id, |reply| UserMessage::Orders {
                limit: limit + 1,
                before,
                reply,
            })
            .await?;
        let archived = self.archived_page(user_id, before, limit + 1).await?;
        // An order mid-move is in both places: memory's copy is the same order.
        let in_memory: BTreeSet<OrderId> = orders.iter().map(|order| order.order_id).collect();
        orders.extend(
            archived
                .into_iter()
                .filter(|o| !in_memory.contains(&o.order_id)),
        );
        orders.sort_unstable_by_key(|order| std::cmp::Reverse(order.order_id));
        let more = orders.len() > limit;
        orders.truncate(limit);
        let next_before = more.then(|| orders.last().map(|o| o.order_id)).flatten();
        Ok((orders, next_before))
    }

    /// Why an order that left memory cannot be paid or cancelled: it ended. `None` if the
    /// archive has no such order of `user_id`.
    async fn ended_in_archive(
        &self,
        order_id: OrderId,
        user_id: UserId,
    ) -> Result<Option<OrderStatus>, EngineError> {
        let order = self.archived_order(order_id, Some(user_id)).await?;
        Ok(order.map(|order| order.status))
    }

    /// Pays `user_id`'s order. An unknown user, or an order of someone else, is ORDER_NOT_FOUND.
    pub async fn pay(
        &self,
        order_id: OrderId,
        user_id: UserId,
        coupon_id: Option<CouponId>,
    ) -> Result<Payment, EngineError> {
        let paid = self.pay_once(order_id, user_id, coupon_id).await;
        self.count_attempt(Attempt::Payment, &paid);
        paid
    }

    async fn pay_once(
        &self,
        order_id: OrderId,
        user_id: UserId,
        coupon_id: Option<CouponId>,
    ) -> Result<Payment, EngineError> {
        let admission = self.links().gate.enter().await;
        let now = self.clock().now();
        let unknown = EngineError::OrderNotFound(order_id);
        // If the payment was what expired the order, its stock is back already: the reply
        // travels with the releases.
        let paid = self
            .ask(user_id, unknown, |reply| UserMessage::Pay {
                order_id,
                coupon_id,
                now,
                reply,
                admission,
            })
            .await?;
        let paid = match paid {
            Err(PaymentError::OrderNotFound(_)) => {
                match self.ended_in_archive(order_id, user_id).await? {
                    Some(OrderStatus::Paid) => Err(PaymentError::AlreadyPaid(order_id)),
                    Some(OrderStatus::Expired) => Err(PaymentError::OrderExpired(order_id)),
                    Some(OrderStatus::Cancelled) => Err(PaymentError::Cancelled(order_id)),
                    _ => paid,
                }
            }
            paid => paid,
        };
        // The buyer's actor replied once its answer was durable; an answer from the archive
        // rests on orders the archive holds durably.
        paid.map_err(EngineError::from)
    }

    /// Cancels a PENDING order of `user_id`'s and returns it once its stock is orderable again
    /// (the reply travels with the releases).
    pub async fn cancel(&self, order_id: OrderId, user_id: UserId) -> Result<Order, EngineError> {
        let admission = self.links().gate.enter().await;
        let now = self.clock().now();
        let unknown = EngineError::OrderNotFound(order_id);
        let cancelled = self
            .ask(user_id, unknown, |reply| UserMessage::Cancel {
                order_id,
                now,
                reply,
                admission,
            })
            .await?;
        let cancelled = match cancelled {
            Err(CancelError::OrderNotFound(_)) => {
                match self.ended_in_archive(order_id, user_id).await? {
                    Some(status) => Err(CancelError::NotCancellable { order_id, status }),
                    None => cancelled,
                }
            }
            cancelled => cancelled,
        };
        cancelled.map_err(EngineError::from)
    }
}

/// Matches each line to its product's option; rejects ambiguous or repeated lines.
fn resolve_lines<'a>(
    lines: &[OrderLine],
    products: &'a [std::sync::Arc<ProductEntry>],
) -> Result<Vec<ResolvedLine<'a>>, EngineError> {
    let mut seen = BTreeSet::new();
    let mut resolved = Vec::with_capacity(lines.len());
    for (line, product) in lines.iter().zip(products) {
        let option_id = match line.option_id {
            Some(option_id) if product.options.iter().any(|(id, _)| *id == option_id) => option_id,
            Some(option_id) => {
                let unknown = StockError::OptionNotFound {
                    product_id: product.id,
                    option_id,
                };
                return Err(unknown.into());
            }
            None if product.options.len() == 1 => product.options[0].0,
            None => {
                return Err(EngineError::InvalidOrder(format!(
                    "product {} has {} options: option_id is required",
                    product.id,
                    product.options.len()
                )));
            }
        };
        if !seen.insert((product.id, option_id)) {
            return Err(EngineError::InvalidOrder(format!(
                "product {} option {option_id} appears on two lines",
                product.id
            )));
        }
        resolved.push(ResolvedLine {
            product: product.as_ref(),
            option_id,
            quantity: line.quantity,
        });
    }
    Ok(resolved)
}

/// The lines grouped by product, products ascending: what each product reserves.
fn stock_by_product(lines: &[ResolvedLine<'_>]) -> Vec<(ProductId, Vec<StockLine>)> {
    let mut by_product: BTreeMap<ProductId, Vec<StockLine>> = BTreeMap::new();
    for line in lines {
        by_product
            .entry(line.product.id)
            .or_default()
            .push(StockLine {
                option_id: line.option_id,
                quantity: line.quantity,
            });
    }
    by_product.into_iter().collect()
}

/// Prices the lines; a total that would not fit in a u64 is an invalid order, not a wrap.
fn order_items(lines: &[ResolvedLine<'_>]) -> Result<Vec<OrderItem>, EngineError> {
    let too_large = || EngineError::InvalidOrder("the order total is too large".into());
    let mut total: Won = 0;
    let mut items = Vec::with_capacity(lines.len());
    for line in lines {
        let line_total = line
            .product
            .price
            .checked_mul(line.quantity)
            .ok_or_else(too_large)?;
        total = total.checked_add(line_total).ok_or_else(too_large)?;
        items.push(OrderItem {
            product_id: line.product.id,
            option_id: line.option_id,
            name: line.product.name.clone(),
            quantity: u32::try_from(line.quantity).map_err(|_| too_large())?,
            unit_price: line.product.price,
            line_total,
        });
    }
    Ok(items)
}
