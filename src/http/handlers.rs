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
use crate::audit::AuditReport;
use crate::engine::{Engine, OrderLine};
use crate::error::EngineError;
use crate::snapshot::SnapshotInfo;

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

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The server is up", body = HealthResponse)))]
pub async fn health() -> Reply200 {
    respond(StatusCode::OK, Ok(HealthResponse { status: "ok" }))
}

/// The Prometheus text exposition, version 0.0.4.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8")))]
pub async fn metrics(engine: Engine) -> Reply200 {
    let text = engine.metrics_text();
    let reply = warp::reply::with_header(
        text,
        warp::http::header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    Ok(reply.into_response())
}

#[utoipa::path(get, path = "/users/{user_id}/points", tag = "points", params(("user_id" = u64, Path, minimum = 1, description = "a user id")),
    responses((status = 200, body = PointsResponse), (status = 404, description = "USER_NOT_FOUND")))]
pub async fn points(user_id: u64, caller: Caller, engine: Engine) -> Reply200 {
    if let Err(error) = caller.acts_as(user_id) {
        return rejected(error);
    }
    let balance = engine.balance(user_id).await;
    ok(balance.map(|balance| PointsResponse { user_id, balance }))
}

#[utoipa::path(post, path = "/users/{user_id}/points/charge", tag = "points", params(("user_id" = u64, Path, minimum = 1, description = "a user id")),
    request_body = ChargeRequest,
    responses((status = 200, description = "The balance after the charge", body = PointsResponse),
        (status = 400, description = "INVALID_AMOUNT"), (status = 404, description = "USER_NOT_FOUND"),
        (status = 409, description = "BALANCE_LIMIT_EXCEEDED")))]
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

#[utoipa::path(get, path = "/products", tag = "products",
    params(("category" = Option<String>, Query, description = "exact category"),
        ("option" = Option<String>, Query, description = "products with an option of exactly this name"),
        ("min_price" = Option<u64>, Query), ("max_price" = Option<u64>, Query),
        ("in_stock" = Option<bool>, Query, description = "true: some option in stock; false: none"),
        ("sort" = Option<String>, Query, description = "id (default), price_asc or price_desc"),
        ("page" = Option<u64>, Query, minimum = 1, description = "1-based, default 1"),
        ("size" = Option<u64>, Query, minimum = 1, maximum = 100, description = "default 20")),
    responses((status = 200, body = ProductPageResponse), (status = 400, description = "INVALID_QUERY")))]
pub async fn products(raw_query: String, engine: Engine) -> Reply200 {
    let page = query::product_query(&raw_query).map(|query| engine.products(&query));
    respond(StatusCode::OK, page.map(ProductPageResponse::from))
}

#[utoipa::path(get, path = "/products/{product_id}", tag = "products", params(("product_id" = u64, Path, minimum = 1, description = "a product id")),
    responses((status = 200, body = Product), (status = 404, description = "PRODUCT_NOT_FOUND")))]
pub async fn product(product_id: u64, engine: Engine) -> Reply200 {
    ok(engine.product(product_id).map(Product::from))
}

#[utoipa::path(get, path = "/products/popular", tag = "products",
    params(("days" = Option<u64>, Query, minimum = 1, maximum = 30, description = "default 3"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100, description = "default 5")),
    responses((status = 200, body = PopularResponse), (status = 400, description = "INVALID_QUERY")))]
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

#[utoipa::path(post, path = "/coupons/{coupon_id}/issue", tag = "coupons", params(("coupon_id" = u64, Path, minimum = 1, description = "a coupon id")),
    request_body = IssueCouponRequest,
    responses((status = 201, body = UserCoupon),
        (status = 404, description = "COUPON_NOT_FOUND, USER_NOT_FOUND"),
        (status = 409, description = "COUPON_ALREADY_ISSUED, COUPON_SOLD_OUT, COUPON_EXPIRED")))]
pub async fn issue_coupon(
    coupon_id: u64,
    caller: Caller,
    request: IssueCouponRequest,
    engine: Engine,
) -> Reply200 {
    if let Err(error) = caller.acts_as(request.user_id.0) {
        return rejected(error);
    }
    let issued = engine.issue_coupon(coupon_id, request.user_id.0).await;
    created(issued.map(UserCoupon::from))
}

#[utoipa::path(get, path = "/coupons/{coupon_id}", tag = "coupons", params(("coupon_id" = u64, Path, minimum = 1, description = "a coupon id")),
    responses((status = 200, body = Coupon), (status = 404, description = "COUPON_NOT_FOUND")))]
pub async fn coupon(coupon_id: u64, engine: Engine) -> Reply200 {
    ok(engine.coupon(coupon_id).await.map(Coupon::from))
}

#[utoipa::path(get, path = "/users/{user_id}/coupons", tag = "coupons", params(("user_id" = u64, Path, minimum = 1, description = "a user id")),
    responses((status = 200, body = UserCouponsResponse), (status = 404, description = "USER_NOT_FOUND")))]
pub async fn user_coupons(user_id: u64, caller: Caller, engine: Engine) -> Reply200 {
    if let Err(error) = caller.acts_as(user_id) {
        return rejected(error);
    }
    let coupons = engine.user_coupons(user_id).await;
    ok(coupons.map(|coupons| UserCouponsResponse {
        user_id,
        coupons: coupons.into_iter().map(UserCoupon::from).collect(),
    }))
}

#[utoipa::path(post, path = "/orders", tag = "orders", request_body = PlaceOrderRequest,
    responses((status = 201, description = "The PENDING order", body = Order),
        (status = 400, description = "INVALID_ORDER"),
        (status = 404, description = "USER_NOT_FOUND, PRODUCT_NOT_FOUND, OPTION_NOT_FOUND"),
        (status = 409, description = "OUT_OF_STOCK, TOO_MANY_PENDING_ORDERS, PURCHASE_LIMIT_EXCEEDED")))]
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
    created(
        engine
            .place_order(request.user_id.0, lines)
            .await
            .map(Order::from),
    )
}

#[utoipa::path(get, path = "/orders/{order_id}", tag = "orders", params(("order_id" = u64, Path, minimum = 1, description = "an order id")),
    responses((status = 200, body = Order), (status = 404, description = "ORDER_NOT_FOUND")))]
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
    ok(order.map(Order::from))
}

#[utoipa::path(get, path = "/users/{user_id}/orders", tag = "orders",
    params(("user_id" = u64, Path, minimum = 1, description = "a user id"), ("limit" = Option<u64>, Query, minimum = 1, maximum = 100, description = "default 20"),
        ("before" = Option<u64>, Query, minimum = 1, description = "only orders with smaller ids")),
    responses((status = 200, description = "Newest first", body = UserOrdersResponse),
        (status = 400, description = "INVALID_QUERY"), (status = 404, description = "USER_NOT_FOUND")))]
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
        orders: orders.into_iter().map(Order::from).collect(),
        next_before,
    }))
}

#[utoipa::path(post, path = "/orders/{order_id}/payment", tag = "orders", params(("order_id" = u64, Path, minimum = 1, description = "an order id")),
    request_body = PayRequest,
    responses((status = 200, body = Payment), (status = 404, description = "ORDER_NOT_FOUND"),
        (status = 409, description = "ORDER_EXPIRED, ORDER_ALREADY_PAID, ORDER_CANCELLED, COUPON_NOT_USABLE, INSUFFICIENT_BALANCE")))]
pub async fn pay(order_id: u64, caller: Caller, request: PayRequest, engine: Engine) -> Reply200 {
    if let Err(error) = caller.acts_as(request.user_id.0) {
        return rejected(error);
    }
    let coupon_id = request.coupon_id.map(|Id(id)| id);
    let paid = engine.pay(order_id, request.user_id.0, coupon_id).await;
    ok(paid.map(Payment::from))
}

#[utoipa::path(post, path = "/orders/{order_id}/cancel", tag = "orders", params(("order_id" = u64, Path, minimum = 1, description = "an order id")),
    request_body = CancelRequest,
    responses((status = 200, description = "The CANCELLED order", body = Order),
        (status = 404, description = "ORDER_NOT_FOUND"), (status = 409, description = "ORDER_NOT_CANCELLABLE")))]
pub async fn cancel(
    order_id: u64,
    caller: Caller,
    request: CancelRequest,
    engine: Engine,
) -> Reply200 {
    if let Err(error) = caller.acts_as(request.user_id.0) {
        return rejected(error);
    }
    ok(engine
        .cancel(order_id, request.user_id.0)
        .await
        .map(Order::from))
}

#[utoipa::path(post, path = "/admin/users", tag = "admin",
    request_body(content = Option<CreateUserRequest>, description = "Optional: an empty body is `{}`"),
    security(("admin_token" = [])),
    responses((status = 201, body = PointsResponse), (status = 400, description = "INVALID_AMOUNT"),
        (status = 409, description = "USER_EXISTS")))]
pub async fn create_user(request: CreateUserRequest, engine: Engine) -> Reply200 {
    let user_id = request.user_id.map(|Id(id)| id);
    let created_user = engine
        .create_user(user_id, request.balance.unwrap_or(0))
        .await;
    created(created_user.map(|(user_id, balance)| PointsResponse { user_id, balance }))
}

#[utoipa::path(post, path = "/admin/products", tag = "admin", request_body = CreateProductRequest,
    security(("admin_token" = [])),
    responses((status = 201, body = Product)))]
pub async fn create_product(request: CreateProductRequest, engine: Engine) -> Reply200 {
    created(
        engine
            .create_product(request.into())
            .await
            .map(Product::from),
    )
}

#[utoipa::path(post, path = "/admin/products/{product_id}/options/{option_id}/restock", tag = "admin",
    params(("product_id" = u64, Path, minimum = 1, description = "a product id"), ("option_id" = u64, Path, minimum = 1, description = "an option id")),
    request_body = RestockRequest, security(("admin_token" = [])),
    responses((status = 200, body = Product),
        (status = 404, description = "PRODUCT_NOT_FOUND, OPTION_NOT_FOUND")))]
pub async fn restock(
    product_id: u64,
    option_id: u64,
    request: RestockRequest,
    engine: Engine,
) -> Reply200 {
    let restocked = engine
        .restock(product_id, option_id, request.quantity)
        .await;
    ok(restocked.map(Product::from))
}

#[utoipa::path(post, path = "/admin/coupons", tag = "admin", request_body = CreateCouponRequest,
    security(("admin_token" = [])),
    responses((status = 201, body = Coupon)))]
pub async fn create_coupon(request: CreateCouponRequest, engine: Engine) -> Reply200 {
    created(engine.create_coupon(request.into()).await.map(Coupon::from))
}

#[utoipa::path(get, path = "/admin/audit", tag = "admin", security(("admin_token" = [])),
    params(("full" = Option<bool>, Query, description = "true: also read every archived order (slower)")),
    responses((status = 200, body = AuditReport), (status = 400, description = "INVALID_QUERY")))]
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

#[utoipa::path(post, path = "/admin/snapshot", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = SnapshotInfo), (status = 500, description = "SNAPSHOT_FAILED")))]
pub async fn snapshot(engine: Engine) -> Reply200 {
    ok(engine.snapshot().await)
}
