//! The error vocabulary. `Code` lists every error code a client can see, once. Each actor has
//! its own small domain error (out of stock, sold out, insufficient balance, ...), carried in
//! its replies, that knows its code; `EngineError`, the one error type the `Engine` returns,
//! wraps them as they are and adds the failures only the engine sees. `src/http/error.rs` is
//! the only place that turns codes into HTTP statuses.

use thiserror::Error;

use crate::actors::coupon::IssueError;
use crate::actors::product::StockError;
use crate::actors::user::{CancelError, ChargeError, PaymentError};
use crate::model::{CouponId, OrderId, ProductId, UserId};

/// Every error code of the API (docs/spec.md §2): what `{"code"}` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    InvalidRequest,
    InvalidQuery,
    InvalidAmount,
    InvalidOrder,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    UriTooLong,
    HeadersTooLarge,
    UserNotFound,
    ProductNotFound,
    OptionNotFound,
    CouponNotFound,
    OrderNotFound,
    UserExists,
    BalanceLimitExceeded,
    OutOfStock,
    TooManyPendingOrders,
    PurchaseLimitExceeded,
    CouponAlreadyIssued,
    CouponSoldOut,
    CouponExpired,
    OrderExpired,
    OrderAlreadyPaid,
    OrderCancelled,
    CouponNotUsable,
    InsufficientBalance,
    OrderNotCancellable,
    SnapshotFailed,
    Unavailable,
}

impl Code {
    pub const fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            InvalidRequest => "INVALID_REQUEST",
            InvalidQuery => "INVALID_QUERY",
            InvalidAmount => "INVALID_AMOUNT",
            InvalidOrder => "INVALID_ORDER",
            Unauthorized => "UNAUTHORIZED",
            Forbidden => "FORBIDDEN",
            NotFound => "NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            UriTooLong => "URI_TOO_LONG",
            HeadersTooLarge => "HEADERS_TOO_LARGE",
            UserNotFound => "USER_NOT_FOUND",
            ProductNotFound => "PRODUCT_NOT_FOUND",
            OptionNotFound => "OPTION_NOT_FOUND",
            CouponNotFound => "COUPON_NOT_FOUND",
            OrderNotFound => "ORDER_NOT_FOUND",
            UserExists => "USER_EXISTS",
            BalanceLimitExceeded => "BALANCE_LIMIT_EXCEEDED",
            OutOfStock => "OUT_OF_STOCK",
            TooManyPendingOrders => "TOO_MANY_PENDING_ORDERS",
            PurchaseLimitExceeded => "PURCHASE_LIMIT_EXCEEDED",
            CouponAlreadyIssued => "COUPON_ALREADY_ISSUED",
            CouponSoldOut => "COUPON_SOLD_OUT",
            CouponExpired => "COUPON_EXPIRED",
            OrderExpired => "ORDER_EXPIRED",
            OrderAlreadyPaid => "ORDER_ALREADY_PAID",
            OrderCancelled => "ORDER_CANCELLED",
            CouponNotUsable => "COUPON_NOT_USABLE",
            InsufficientBalance => "INSUFFICIENT_BALANCE",
            OrderNotCancellable => "ORDER_NOT_CANCELLABLE",
            SnapshotFailed => "SNAPSHOT_FAILED",
            Unavailable => "UNAVAILABLE",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    #[error("user {0} not found")]
    UserNotFound(UserId),
    #[error("user {0} already exists")]
    UserExists(UserId),
    #[error("product {0} not found")]
    ProductNotFound(ProductId),
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

    #[error("user {user_id} already has {limit} PENDING orders: pay or cancel one first")]
    TooManyPendingOrders { user_id: UserId, limit: u64 },

    #[error(transparent)]
    Stock(#[from] StockError),
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error(transparent)]
    Charge(#[from] ChargeError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Cancel(#[from] CancelError),

    /// A snapshot could not be taken (disk, encoding). Internal: logged, reported as 500.
    #[error("snapshot failed: {0}")]
    Snapshot(String),

    /// An actor did not answer in time or is gone. Internal: logged, reported as 503.
    #[error("the engine is unavailable: {0}")]
    Unavailable(String),
}

impl EngineError {
    /// The error's code, as clients see it.
    pub fn code(&self) -> Code {
        match self {
            EngineError::UserNotFound(_) => Code::UserNotFound,
            EngineError::UserExists(_) => Code::UserExists,
            EngineError::ProductNotFound(_) => Code::ProductNotFound,
            EngineError::CouponNotFound(_) => Code::CouponNotFound,
            EngineError::OrderNotFound(_) => Code::OrderNotFound,
            EngineError::InvalidAmount(_) => Code::InvalidAmount,
            EngineError::InvalidOrder(_) => Code::InvalidOrder,
            EngineError::InvalidRequest(_) => Code::InvalidRequest,
            EngineError::TooManyPendingOrders { .. } => Code::TooManyPendingOrders,
            EngineError::Stock(error) => error.code(),
            EngineError::Issue(error) => error.code(),
            EngineError::Charge(error) => error.code(),
            EngineError::Payment(error) => error.code(),
            EngineError::Cancel(error) => error.code(),
            EngineError::Snapshot(_) => Code::SnapshotFailed,
            EngineError::Unavailable(_) => Code::Unavailable,
        }
    }
}
