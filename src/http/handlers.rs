//! One handler per route: a request type in, one `Engine` call, a reply out. No business logic
//! lives here; errors become JSON through `ApiError`, so handlers never reject.

use std::convert::Infallible;

use serde::Serialize;
use warp::Reply;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::Caller;
use super::error::ApiError;
use super::query;
use super::types::*;
use crate::engine::{Engine, OrderLine};
use crate::error::EngineError;

type Reply200 = Result<Response, Infallible>;

/// A JSON reply with `status`, or the error's JSON.
fn respond<T: Serialize>(status: StatusCode, result: Result<T, ApiError>) -> Reply200 {
    Ok(match result {
        Ok(body) => warp::reply::with_status(warp::reply::json(&body), status).into_response(),
        Err(error) => error.into_response(),
    })
}

/// A request the handler itself rejects (before any engine call).
fn rejected(error: ApiError) -> Reply200 {
    Ok(error.into_response())
}

fn ok<T: Serialize>(result: Result<T, EngineError>) -> Reply200 {
    respond(StatusCode::OK, result.map_err(ApiError::from))
}

fn created<T: Serialize>(result: Result<T, EngineError>) -> Reply200 {
    respond(StatusCode::CREATED, result.map_err(ApiError::from))
}

pub async fn health() -> Reply200 {
    respond(StatusCode::OK, Ok(HealthResponse { status: "ok" }))
}

/// The Prometheus text exposition, version 0.0.4.
pub async fn metrics(engine: Engine) -> Reply200 {
    let text = engine.metrics_text();
    let reply = warp::reply::with_header(
        text,
        warp::http::header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    Ok(reply.into_response())
}

pub async fn points(user_id: u64, caller: Caller, engine: Engine) -> Reply200 {
    if let Err(error) = caller.acts_as(user_id) {
        return rejected(error);
    }
    let balance = engine.balance(user_id).await;
    ok(balance.map(|balance| PointsResponse { user_id, balance }))
}

pub async fn charge(
    user_id: u64,
    caller: Caller,
    request: ChargeRequest,
    engine: Engine,
) -> Reply200 {
    if let Err(error) = caller.acts_as(user_id) {
        return rejected(error);
    }
    let Some(amount) = request.amount.as_u64() else {
        let error = ApiError::invalid_amount(format!(
            "amount must be a positive integer, got {}",
            request.amount
        ));
        return rejected(error);
    };
    let balance = engine.charge(user_id, amount).await;
    ok(balance.map(|balance| PointsResponse { user_id, balance }))
}

pub async fn products(raw_query: String, engine: Engine) -> Reply200 {
    let page = query::product_query(&raw_query).map(|query| engine.products(&query));
    respond(StatusCode::OK, page.map(ProductPageResponse::from))
}

pub async fn product(product_id: u64, engine: Engine) -> Reply200 {
    ok(engine.product(product_id))
}

pub async fn popular(raw_query: String, engine: Engine) -> Reply200 {
    let (days, limit) = match query::popular_query(&raw_query) {
        Ok(parameters) => parameters,
        Err(error) => return rejected(error),
    };
    let items = engine.popular(days, limit).await;
    ok(items.map(|items| PopularResponse {
        days,
        limit,
        items: items.into_iter().map(PopularItemResponse::from).collect(),
    }))
}

pub async fn issue_coupon(
    coupon_id: u64,
    caller: Caller,
    request: IssueCouponRequest,
    engine: Engine,
) -> Reply200 {
    if let Err(error) = caller.acts_as(request.user_id.0) {
        return rejected(error);
    }
    created(engine.issue_coupon(coupon_id, request.user_id.0).await)
}

pub async fn coupon(coupon_id: u64, engine: Engine) -> Reply200 {
    ok(engine.coupon(coupon_id).await)
}

pub async fn user_coupons(user_id: u64, caller: Caller, engine: Engine) -> Reply200 {
    if let Err(error) = caller.acts_as(user_id) {
        return rejected(error);
    }
    let coupons = engine.user_coupons(user_id).await;
    ok(coupons.map(|coupons| UserCouponsResponse { user_id, coupons }))
}

pub async fn place_order(caller: Caller, request: PlaceOrderRequest, engine: Engine) -> Reply200 {
    if let Err(error) = caller.acts_as(request.user_id.0) {
        return rejected(error);
    }
    let mut lines = Vec::with_capacity(request.items.len());
    for Object(item) in request.items {
        let Ok(quantity) = u64::try_from(item.quantity) else {
            let message = format!("product {}: quantity must be positive", item.product_id.0);
            return rejected(ApiError::invalid_order(message));
        };
        lines.push(OrderLine {
            product_id: item.product_id.0,
            option_id: item.option_id.map(|Id(id)| id),
            quantity,
        });
    }
    created(engine.place_order(request.user_id.0, lines).await)
}

pub async fn order(order_id: u64, caller: Caller, engine: Engine) -> Reply200 {
    // Another user's order is not found: its existence is not revealed.
    let order =
        engine
            .order(order_id)
            .await
            .and_then(|order| match caller.may_see(order.user_id) {
                true => Ok(order),
                false => Err(EngineError::OrderNotFound(order_id)),
            });
    ok(order)
}

pub async fn user_orders(
    user_id: u64,
    caller: Caller,
    raw_query: String,
    engine: Engine,
) -> Reply200 {
    if let Err(error) = caller.acts_as(user_id) {
        return rejected(error);
    }
    let (limit, before) = match query::orders_query(&raw_query) {
        Ok(parameters) => parameters,
        Err(error) => return rejected(error),
    };
    let page = engine.user_orders(user_id, limit, before).await;
    ok(page.map(|(orders, next_before)| UserOrdersResponse {
        user_id,
        orders,
        next_before,
    }))
}

pub async fn pay(order_id: u64, caller: Caller, request: PayRequest, engine: Engine) -> Reply200 {
    if let Err(error) = caller.acts_as(request.user_id.0) {
        return rejected(error);
    }
    let coupon_id = request.coupon_id.map(|Id(id)| id);
    ok(engine.pay(order_id, request.user_id.0, coupon_id).await)
}

pub async fn cancel(
    order_id: u64,
    caller: Caller,
    request: CancelRequest,
    engine: Engine,
) -> Reply200 {
    if let Err(error) = caller.acts_as(request.user_id.0) {
        return rejected(error);
    }
    ok(engine.cancel(order_id, request.user_id.0).await)
}

pub async fn create_user(request: CreateUserRequest, engine: Engine) -> Reply200 {
    let user_id = request.user_id.map(|Id(id)| id);
    let created_user = engine
        .create_user(user_id, request.balance.unwrap_or(0))
        .await;
    created(created_user.map(|(user_id, balance)| PointsResponse { user_id, balance }))
}

pub async fn create_product(request: CreateProductRequest, engine: Engine) -> Reply200 {
    created(engine.create_product(request.into()).await)
}

pub async fn restock(
    product_id: u64,
    option_id: u64,
    request: RestockRequest,
    engine: Engine,
) -> Reply200 {
    ok(engine
        .restock(product_id, option_id, request.quantity)
        .await)
}

pub async fn create_coupon(request: CreateCouponRequest, engine: Engine) -> Reply200 {
    created(engine.create_coupon(request.into()).await)
}

/// `GET /admin/audit`; with `?full=true` the full audit, which also reads every archived
/// order (slower: for tests and operators).
pub async fn audit(raw_query: String, engine: Engine) -> Reply200 {
    match raw_query.as_str() {
        "" | "full=false" => ok(engine.audit().await),
        "full=true" => ok(engine.audit_with_archive().await),
        _ => rejected(ApiError::invalid_query(
            "the only parameter is full=true (also read the order archive)",
        )),
    }
}

pub async fn snapshot(engine: Engine) -> Reply200 {
    ok(engine.snapshot().await)
}
