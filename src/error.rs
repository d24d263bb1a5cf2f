//! The error vocabulary. `Code` lists every error code a client can see, once. Each actor has
//! its own small domain error (out of stock, sold out, insufficient balance, ...), carried in
//! its replies, that knows its code; `EngineError`, the one error type the `Engine` returns,
//! wraps them as they are and adds the failures only the engine sees. `src/http/error.rs` is
//! the only place that turns codes into HTTP statuses.

use thiserror::Error;

pub use crate::code::Code;
use crate::domain::coupon::IssueError;
use crate::domain::product::StockError;
use crate::domain::user::{CancelError, ChargeError, PaymentError};
use crate::model::{CouponId, OrderId, ProductId, UserId};

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
