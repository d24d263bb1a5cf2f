//! `EngineError`: the one error type the `Engine` returns. Each actor has its own small domain
//! error (out of stock, sold out, insufficient balance, ...), carried in its replies; they are
//! converted here. `src/http/error.rs` is the only place that turns these into HTTP statuses.

use thiserror::Error;

use crate::actors::coupon::IssueError;
use crate::actors::product::StockError;
use crate::actors::user::{CancelError, ChargeError, PaymentError};
use crate::model::{CouponId, OptionId, OrderId, ProductId, UserId};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    #[error("user {0} not found")]
    UserNotFound(UserId),
    #[error("user {0} already exists")]
    UserExists(UserId),
    #[error("product {0} not found")]
    ProductNotFound(ProductId),
    #[error("option {option_id} not found on product {product_id}")]
    OptionNotFound {
        product_id: ProductId,
        option_id: OptionId,
    },
    #[error("coupon {0} not found")]
    CouponNotFound(CouponId),
    #[error("order {0} not found")]
    OrderNotFound(OrderId),

    #[error("{0}")]
    InvalidAmount(String),
    #[error("{0}")]
    InvalidOrder(String),
    #[error("{0}")]
    InvalidRequest(String),

    #[error(
        "charging {amount} would bring user {user_id}'s balance over the limit of {max_balance}"
    )]
    BalanceLimitExceeded {
        user_id: UserId,
        amount: u64,
        max_balance: u64,
    },
    #[error(
        "out of stock: product {product_id} option {option_id} has {available} available, {requested} requested"
    )]
    OutOfStock {
        product_id: ProductId,
        option_id: OptionId,
        requested: u64,
        available: u64,
    },
    #[error("user {user_id} already has {limit} PENDING orders: pay or cancel one first")]
    TooManyPendingOrders { user_id: UserId, limit: u64 },
    #[error(
        "product {product_id} allows {limit} units per user: user {user_id} holds {held} in pending and paid orders and asked for {requested}"
    )]
    PurchaseLimitExceeded {
        product_id: ProductId,
        user_id: UserId,
        limit: u64,
        held: u64,
        requested: u64,
    },
    #[error("coupon {coupon_id} was already issued to user {user_id}")]
    CouponAlreadyIssued {
        coupon_id: CouponId,
        user_id: UserId,
    },
    #[error("coupon {0} is sold out")]
    CouponSoldOut(CouponId),
    #[error("coupon {0} has expired")]
    CouponExpired(CouponId),
    #[error("order {0} has expired")]
    OrderExpired(OrderId),
    #[error("order {0} is already paid")]
    OrderAlreadyPaid(OrderId),
    #[error("order {0} was cancelled")]
    OrderCancelled(OrderId),
    #[error("coupon {coupon_id} is not usable: {reason}")]
    CouponNotUsable { coupon_id: CouponId, reason: String },
    #[error("insufficient balance: {needed} needed, {balance} available")]
    InsufficientBalance { balance: u64, needed: u64 },
    #[error("order {order_id} cannot be cancelled: it is {status}")]
    OrderNotCancellable { order_id: OrderId, status: String },

    /// A snapshot could not be taken (disk, encoding). Internal: logged, reported as 500.
    #[error("snapshot failed: {0}")]
    Snapshot(String),

    /// An actor did not answer in time or is gone. Internal: logged, reported as 503.
    #[error("the engine is unavailable: {0}")]
    Unavailable(String),
}

impl EngineError {
    /// The error's code, as clients see it (`{"code","message"}`, docs/spec.md §2).
    pub fn code(&self) -> &'static str {
        use EngineError::*;
        match self {
            UserNotFound(_) => "USER_NOT_FOUND",
            ProductNotFound(_) => "PRODUCT_NOT_FOUND",
            OptionNotFound { .. } => "OPTION_NOT_FOUND",
            CouponNotFound(_) => "COUPON_NOT_FOUND",
            OrderNotFound(_) => "ORDER_NOT_FOUND",
            InvalidAmount(_) => "INVALID_AMOUNT",
            InvalidOrder(_) => "INVALID_ORDER",
            InvalidRequest(_) => "INVALID_REQUEST",
            UserExists(_) => "USER_EXISTS",
            BalanceLimitExceeded { .. } => "BALANCE_LIMIT_EXCEEDED",
            OutOfStock { .. } => "OUT_OF_STOCK",
            TooManyPendingOrders { .. } => "TOO_MANY_PENDING_ORDERS",
            PurchaseLimitExceeded { .. } => "PURCHASE_LIMIT_EXCEEDED",
            CouponAlreadyIssued { .. } => "COUPON_ALREADY_ISSUED",
            CouponSoldOut(_) => "COUPON_SOLD_OUT",
            CouponExpired(_) => "COUPON_EXPIRED",
            OrderExpired(_) => "ORDER_EXPIRED",
            OrderAlreadyPaid(_) => "ORDER_ALREADY_PAID",
            OrderCancelled(_) => "ORDER_CANCELLED",
            CouponNotUsable { .. } => "COUPON_NOT_USABLE",
            InsufficientBalance { .. } => "INSUFFICIENT_BALANCE",
            OrderNotCancellable { .. } => "ORDER_NOT_CANCELLABLE",
            Snapshot(_) => "SNAPSHOT_FAILED",
            Unavailable(_) => "UNAVAILABLE",
        }
    }
}

impl From<StockError> for EngineError {
    fn from(error: StockError) -> Self {
        match error {
            StockError::OutOfStock {
                product_id,
                option_id,
                requested,
                available,
            } => EngineError::OutOfStock {
                product_id,
                option_id,
                requested,
                available,
            },
            StockError::OptionNotFound {
                product_id,
                option_id,
            } => EngineError::OptionNotFound {
                product_id,
                option_id,
            },
            StockError::PurchaseLimitExceeded {
                product_id,
                user_id,
                limit,
                held,
                requested,
            } => EngineError::PurchaseLimitExceeded {
                product_id,
                user_id,
                limit,
                held,
                requested,
            },
            limit @ StockError::StockLimitExceeded { .. } => {
                EngineError::InvalidRequest(limit.to_string())
            }
        }
    }
}

impl From<IssueError> for EngineError {
    fn from(error: IssueError) -> Self {
        match error {
            IssueError::AlreadyIssued { coupon_id, user_id } => {
                EngineError::CouponAlreadyIssued { coupon_id, user_id }
            }
            IssueError::SoldOut(coupon_id) => EngineError::CouponSoldOut(coupon_id),
            IssueError::Expired(coupon_id) => EngineError::CouponExpired(coupon_id),
        }
    }
}

impl From<ChargeError> for EngineError {
    fn from(error: ChargeError) -> Self {
        match error {
            ChargeError::BalanceLimitExceeded {
                user_id,
                amount,
                max_balance,
            } => EngineError::BalanceLimitExceeded {
                user_id,
                amount,
                max_balance,
            },
        }
    }
}

impl From<PaymentError> for EngineError {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::OrderNotFound(order_id) => EngineError::OrderNotFound(order_id),
            PaymentError::OrderExpired(order_id) => EngineError::OrderExpired(order_id),
            PaymentError::AlreadyPaid(order_id) => EngineError::OrderAlreadyPaid(order_id),
            PaymentError::Cancelled(order_id) => EngineError::OrderCancelled(order_id),
            PaymentError::CouponNotUsable { coupon_id, reason } => EngineError::CouponNotUsable {
                coupon_id,
                reason: reason.to_string(),
            },
            PaymentError::InsufficientBalance { balance, needed } => {
                EngineError::InsufficientBalance { balance, needed }
            }
        }
    }
}

impl From<CancelError> for EngineError {
    fn from(error: CancelError) -> Self {
        match error {
            CancelError::OrderNotFound(order_id) => EngineError::OrderNotFound(order_id),
            CancelError::NotCancellable { order_id, status } => EngineError::OrderNotCancellable {
                order_id,
                status: format!("{status:?}").to_uppercase(),
            },
        }
    }
}
