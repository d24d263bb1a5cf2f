//! Every error code a client can see, listed once (docs/spec.md §2). A leaf: domain errors name
//! their code here, and `src/http/error.rs` maps each to an HTTP status.

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
