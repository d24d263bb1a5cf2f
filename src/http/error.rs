//! The only place that picks HTTP statuses. Engine errors and warp rejections both become an
//! `ApiError`, rendered as `{"code","message"}` — never a plain-text or HTML body, never a 500
//! for bad input. Internal failures are logged in full and answered with a short message.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

use crate::error::{Code, EngineError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
}

impl warp::reject::Reject for ApiError {}

/// Every error's body (docs/spec.md §2).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// What went wrong, for programs: `OUT_OF_STOCK`, `INVALID_REQUEST`, ...
    pub code: &'a str,
    /// What went wrong, for people: names the offending id or field.
    pub message: &'a str,
}

/// Error messages are cut to this many characters: they may quote what a client sent, and a
/// client may send megabytes.
const MESSAGE_LIMIT_CHARS: usize = 300;

/// `message`, cut to `MESSAGE_LIMIT_CHARS` (on a character boundary) with an ellipsis.
fn bounded(mut message: String) -> String {
    if let Some((cut, _)) = message.char_indices().nth(MESSAGE_LIMIT_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// The status of each code: the one table of them.
pub fn status_of(code: Code) -> StatusCode {
    use Code::*;
    match code {
        InvalidRequest | InvalidQuery | InvalidAmount | InvalidOrder => StatusCode::BAD_REQUEST,
        Unauthorized => StatusCode::UNAUTHORIZED,
        Forbidden => StatusCode::FORBIDDEN,
        NotFound | UserNotFound | ProductNotFound | OptionNotFound | CouponNotFound
        | OrderNotFound => StatusCode::NOT_FOUND,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        UriTooLong => StatusCode::URI_TOO_LONG,
        HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        UserExists
        | BalanceLimitExceeded
        | OutOfStock
        | TooManyPendingOrders
        | PurchaseLimitExceeded
        | CouponAlreadyIssued
        | CouponSoldOut
        | CouponExpired
        | OrderExpired
        | OrderAlreadyPaid
        | OrderCancelled
        | CouponNotUsable
        | InsufficientBalance
        | OrderNotCancellable => StatusCode::CONFLICT,
        SnapshotFailed => StatusCode::INTERNAL_SERVER_ERROR,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl ApiError {
    /// An error with `code`, answered with the code's status.
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            status: status_of(code),
            code,
            message: bounded(message.into()),
        }
    }

    /// 415 UNSUPPORTED_MEDIA_TYPE: a body that is not declared as JSON.
    pub fn unsupported_media_type() -> ApiError {
        ApiError::new(
            Code::UnsupportedMediaType,
            "a request body must be sent with Content-Type: application/json",
        )
    }

    /// 400 INVALID_REQUEST: malformed JSON, wrong types, unknown fields, a bad path id.
    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidRequest, message)
    }

    /// 400 INVALID_QUERY: a query string that breaks the listing's rules.
    pub fn invalid_query(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidQuery, message)
    }

    /// 400 INVALID_AMOUNT: an amount that is not a positive integer within the limit.
    pub fn invalid_amount(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidAmount, message)
    }

    /// 400 INVALID_ORDER: an order whose lines break the order rules.
    pub fn invalid_order(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidOrder, message)
    }

    /// 401 UNAUTHORIZED: a missing or bad token (admin or buyer).
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Unauthorized, message)
    }

    /// 403 FORBIDDEN: a buyer's token that proves another user than the one acted for.
    pub fn forbidden(user_id: u64) -> ApiError {
        ApiError::new(
            Code::Forbidden,
            format!("the token does not allow acting as user {user_id}"),
        )
    }

    /// 404 NOT_FOUND: no such route.
    pub fn not_found() -> ApiError {
        ApiError::new(Code::NotFound, "no such route")
    }

    /// 413 PAYLOAD_TOO_LARGE: a body over `server.body_limit`.
    pub fn payload_too_large(limit: u64) -> ApiError {
        ApiError::new(
            Code::PayloadTooLarge,
            format!("the request body is over the limit of {limit} bytes"),
        )
    }
}

impl ApiError {
    /// The JSON body: `{"code","message"}`.
    pub fn body(&self) -> Vec<u8> {
        let body = ErrorBody {
            code: self.code.as_str(),
            message: &self.message,
        };
        serde_json::to_vec(&body).expect("two strings always serialize")
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let mut response = Response::new(self.body().into());
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            warp::http::header::CONTENT_TYPE,
            warp::http::HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 7235: a 401 names the scheme that would be accepted.
            response.headers_mut().insert(
                warp::http::header::WWW_AUTHENTICATE,
                warp::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        let code = error.code();
        if let EngineError::Unavailable(detail) = &error {
            // The detail is for operators, not clients.
            tracing::error!(%detail, "engine unavailable");
            return ApiError::new(code, "the engine is busy or shutting down; retry later");
        }
        ApiError::new(code, error.to_string())
    }
}

/// Turns every rejection into the JSON error shape.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let error = if let Some(error) = rejection.find::<ApiError>() {
        error.clone()
    } else if rejection.is_not_found() {
        ApiError::not_found()
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            Code::MethodNotAllowed,
            "this path does not accept that method",
        )
    } else if let Some(header) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::invalid_request(format!("the `{}` header is not valid", header.name()))
    } else if let Some(header) = rejection.find::<warp::reject::MissingHeader>() {
        ApiError::invalid_request(format!("the `{}` header is missing", header.name()))
    } else {
        // Anything else warp rejects (a body it cannot read) is the client's request, not our
        // failure. The details are for the log, in plain words for the client.
        tracing::debug!(?rejection, "request rejected");
        ApiError::invalid_request("the request could not be read")
    };
    Ok(error.into_response())
}
