//! The warp filters: method + path + body limit + JSON -> request type -> handler.
//!
//! Each route matches its path first and its method second, so an unknown path is 404 and a
//! known path with the wrong method is 405. Path ids are taken as text and parsed here, so
//! `/users/abc/points` is a 400 INVALID_REQUEST rather than a confusing 404. Admin routes check
//! the token right after the path: a disabled admin API answers 404 to every method.

use std::convert::Infallible;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Buf, Filter, Rejection};

use super::auth::{self, BuyerAuth};
use super::error::{ApiError, recover};
use super::handlers;
use super::route_table::{UNMATCHED, allowed_methods, method_label, template_of};
use crate::engine::Engine;

/// What the routes need besides the engine.
#[derive(Clone, Debug)]
pub struct RouteOptions {
    /// Largest accepted body, in bytes.
    pub body_limit_bytes: u64,
    /// The admin bearer token; empty disables the admin API.
    pub admin_token: String,
    /// Who may act as a buyer.
    pub buyers: BuyerAuth,
    /// Whether `GET /metrics` is served (`metrics.enabled`).
    pub metrics: bool,
}

/// Every route of docs/spec.md §2, with every rejection turned into the JSON error shape.
pub fn routes(engine: Engine, options: RouteOptions) -> BoxedFilter<(Response,)> {
    let shop = shop_routes(
        engine.clone(),
        options.body_limit_bytes,
        options.buyers.clone(),
    );
    let api = if options.metrics {
        let metrics = warp::path!("metrics")
            .and(warp::get())
            .and(warp::any().map({
                let engine = engine.clone();
                move || engine.clone()
            }))
            .and_then(handlers::metrics);
        metrics.or(shop).unify().boxed()
    } else {
        shop
    };
    let api = api.or(admin_routes(engine.clone(), options)).unify();
    with_request_id(engine, api.recover(recover).unify().boxed())
}

/// The longest request id a client may choose.
const MAX_REQUEST_ID_CHARS: usize = 64;

/// Every response carries `x-request-id`: the client's own when it sent one of at most 64
/// visible ASCII characters, else a new one; the request's log line names it (DEBUG for each
/// request, WARN for a 5xx). Every response is counted in the metrics, by route template.
fn with_request_id(engine: Engine, api: BoxedFilter<(Response,)>) -> BoxedFilter<(Response,)> {
    let chosen = warp::header::optional::<String>("x-request-id")
        .or(warp::any().map(|| None))
        .unify();
    warp::any()
        .map(std::time::Instant::now)
        .and(warp::method())
        .and(warp::path::full())
        .and(chosen)
        .and(api)
        .map(
            move |started: std::time::Instant,
                  method: warp::http::Method,
                  path: warp::path::FullPath,
                  chosen: Option<String>,
                  mut response: Response| {
                let id = chosen
                    .filter(|id| is_request_id(id))
                    .unwrap_or_else(new_request_id);
                let status = response.status().as_u16();
                let took = started.elapsed();
                let micros = took.as_micros() as u64;
                let path = path.as_str();
                let template = template_of(path);
                debug_assert!(
                    template != UNMATCHED || status == 404,
                    "{method} {path} was served ({status}) but is missing from ROUTES"
                );
                let method_label = method_label(&method);
                engine.metrics().request(template, method_label, status, took);
                if status >= 500 {
                    tracing::warn!(request_id = %id, %method, path, status, micros, "request failed");
                } else {
                    tracing::debug!(request_id = %id, %method, path, status, micros, "request");
                }
                if let Ok(value) = warp::http::HeaderValue::from_str(&id) {
                    response.headers_mut().insert("x-request-id", value);
                }
                if status == 405 {
                    // RFC 9110: a 405 lists the methods the path does accept.
                    let allowed = allowed_methods(template);
                    if let Ok(value) = warp::http::HeaderValue::from_str(&allowed) {
                        response.headers_mut().insert("allow", value);
                    }
                }
                response
            },
        )
        .boxed()
}

/// A request id of our own: 16 random hex digits.
pub fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn is_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&id.len()) && id.bytes().all(|byte| byte.is_ascii_graphic())
}

fn shop_routes(engine: Engine, limit: u64, buyers: BuyerAuth) -> BoxedFilter<(Response,)> {
    let engine = warp::any().map(move || engine.clone());
    let caller = move || auth::caller(buyers.clone());
    // HEAD answers like GET, without the body (hyper drops it).
    let health = warp::path!("health")
        .and(warp::get().or(warp::head()).unify())
        .and_then(handlers::health);
    let openapi = warp::path!("openapi.json")
        .and(warp::get())
        .and_then(super::openapi::openapi_json);
    let points = warp::path!("users" / String / "points")
        .and(warp::get())
        .and_then(positive_id)
        .and(caller())
        .and(engine.clone())
        .and_then(handlers::points);
    let charge = warp::path!("users" / String / "points" / "charge")
        .and(warp::post())
        .and_then(positive_id)
        .and(caller())
        .and(json_body(limit))
        .and(engine.clone())
        .and_then(handlers::charge);
    let user_coupons = warp::path!("users" / String / "coupons")
        .and(warp::get())
        .and_then(positive_id)
        .and(caller())
        .and(engine.clone())
        .and_then(handlers::user_coupons);
    let user_orders = warp::path!("users" / String / "orders")
        .and(warp::get())
        .and_then(positive_id)
        .and(caller())
        .and(raw_query())
        .and(engine.clone())
        .and_then(handlers::user_orders);
    let products = warp::path!("products")
        .and(warp::get())
        .and(raw_query())
        .and(engine.clone())
        .and_then(handlers::products);
    // Before `/products/{id}`, which would take "popular" for an id.
    let popular = warp::path!("products" / "popular")
        .and(warp::get())
        .and(raw_query())
        .and(engine.clone())
        .and_then(handlers::popular);
    let product = warp::path!("products" / String)
        .and(warp::get())
        .and_then(positive_id)
        .and(engine.clone())
        .and_then(handlers::product);
    let issue = warp::path!("coupons" / String / "issue")
        .and(warp::post())
        .and_then(positive_id)
        .and(caller())
        .and(json_body(limit))
        .and(engine.clone())
        .and_then(handlers::issue_coupon);
    let coupon = warp::path!("coupons" / String)
        .and(warp::get())
        .and_then(positive_id)
        .and(engine.clone())
        .and_then(handlers::coupon);
    let place_order = warp::path!("orders")
        .and(warp::post())
        .and(caller())
        .and(json_body(limit))
        .and(engine.clone())
        .and_then(handlers::place_order);
    let order = warp::path!("orders" / String)
        .and(warp::get())
        .and_then(positive_id)
        .and(caller())
        .and(engine.clone())
        .and_then(handlers::order);
    let pay = warp::path!("orders" / String / "payment")
        .and(warp::post())
        .and_then(positive_id)
        .and(caller())
        .and(json_body(limit))
        .and(engine.clone())
        .and_then(handlers::pay);
    let cancel = warp::path!("orders" / String / "cancel")
        .and(warp::post())
        .and_then(positive_id)
        .and(caller())
        .and(json_body(limit))
        .and(engine)
        .and_then(handlers::cancel);
    let users = points
        .or(charge)
        .unify()
        .or(user_coupons)
        .unify()
        .or(user_orders)
        .unify();
    let catalog = products.or(popular).unify().or(product).unify();
    let coupons = issue.or(coupon).unify();
    let orders = place_order
        .or(order)
        .unify()
        .or(pay)
        .unify()
        .or(cancel)
        .unify();
    health
        .or(openapi)
        .unify()
        .or(users)
        .unify()
        .or(catalog)
        .unify()
        .or(coupons)
        .unify()
        .or(orders)
        .unify()
        .boxed()
}

fn admin_routes(engine: Engine, options: RouteOptions) -> BoxedFilter<(Response,)> {
    let limit = options.body_limit_bytes;
    let token: Arc<str> = options.admin_token.into();
    let admin = move || auth::admin(token.clone());
    let engine = warp::any().map(move || engine.clone());
    let users = warp::path!("admin" / "users")
        .and(admin())
        .and(warp::post())
        .and(json_body(limit))
        .and(engine.clone())
        .and_then(handlers::create_user);
    let products = warp::path!("admin" / "products")
        .and(admin())
        .and(warp::post())
        .and(json_body(limit))
        .and(engine.clone())
        .and_then(handlers::create_product);
    let restock = warp::path!("admin" / "products" / String / "options" / String / "restock")
        .and(admin())
        .and(warp::post())
        .and_then(|product: String, option: String| async move {
            Ok::<_, Rejection>((parse_id(&product)?, parse_id(&option)?))
        })
        .untuple_one()
        .and(json_body(limit))
        .and(engine.clone())
        .and_then(handlers::restock);
    let coupons = warp::path!("admin" / "coupons")
        .and(admin())
        .and(warp::post())
        .and(json_body(limit))
        .and(engine.clone())
        .and_then(handlers::create_coupon);
    let snapshot = warp::path!("admin" / "snapshot")
        .and(admin())
        .and(warp::post())
        .and(engine.clone())
        .and_then(handlers::snapshot);
    let audit = warp::path!("admin" / "audit")
        .and(admin())
        .and(warp::get())
        .and(raw_query())
        .and(engine)
        .and_then(handlers::audit);
    users
        .or(products)
        .unify()
        .or(restock)
        .unify()
        .or(coupons)
        .unify()
        .or(snapshot)
        .unify()
        .or(audit)
        .unify()
        .boxed()
}

/// A path id: a positive integer in canonical decimal (digits only, no sign, no leading zero),
/// so one id has one spelling.
fn parse_id(raw: &str) -> Result<u64, Rejection> {
    let canonical = raw.bytes().all(|byte| byte.is_ascii_digit()) && !raw.starts_with('0');
    match raw.parse::<u64>() {
        Ok(id) if canonical && id > 0 => Ok(id),
        _ => Err(warp::reject::custom(ApiError::invalid_request(format!(
            "`{raw}` is not a valid id: ids are positive integers written in plain decimal"
        )))),
    }
}

async fn positive_id(raw: String) -> Result<u64, Rejection> {
    parse_id(&raw)
}

/// The raw query string, empty when there is none.
fn raw_query() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// Reads a JSON body of at most `limit` bytes into `T`. Bodies are read as a stream, so a
/// client that sends no Content-Length still cannot make us buffer more than the limit.
fn json_body<T: DeserializeOwned + Send + 'static>(
    limit: u64,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::stream())
        .and_then(
            move |declared: Option<u64>, content_type: Option<String>, body| async move {
                if declared.is_some_and(|length| length > limit) {
                    return Err(warp::reject::custom(ApiError::payload_too_large(limit)));
                }
                let bytes = read_limited(body, limit).await?;
                parse_json(&bytes, content_type.as_deref()).map_err(warp::reject::custom)
            },
        )
}

async fn read_limited<B: Buf>(
    body: impl Stream<Item = Result<B, warp::Error>>,
    limit: u64,
) -> Result<Vec<u8>, Rejection> {
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|error| {
            warp::reject::custom(ApiError::invalid_request(format!(
                "the body could not be read: {error}"
            )))
        })?;
        if (bytes.len() + chunk.remaining()) as u64 > limit {
            return Err(warp::reject::custom(ApiError::payload_too_large(limit)));
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            bytes.extend_from_slice(piece);
            let read = piece.len();
            chunk.advance(read);
        }
    }
    Ok(bytes)
}

/// Whether a Content-Type names JSON (`application/json`, any case, parameters allowed).
fn is_json(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    media_type.eq_ignore_ascii_case("application/json")
}

/// An empty body reads as `{}`, so endpoints whose fields are all optional need none (and no
/// Content-Type). Any other body must be declared JSON and be a JSON object: serde would read
/// an array field by field, and `[7]` is not a request.
fn parse_json<T: DeserializeOwned>(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<T, ApiError> {
    let Some(first) = bytes.iter().find(|byte| !byte.is_ascii_whitespace()) else {
        return serde_json::from_slice(b"{}")
            .map_err(|error| ApiError::invalid_request(format!("a body is required: {error}")));
    };
    if !content_type.is_some_and(is_json) {
        return Err(ApiError::unsupported_media_type());
    }
    if *first != b'{' {
        return Err(ApiError::invalid_request("the body must be a JSON object"));
    }
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::invalid_request(format!("invalid JSON body: {error}")))
}
