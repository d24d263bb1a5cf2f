//! `GET /openapi.json` (docs/spec.md §2): the OpenAPI 3.1 description of every route, generated
//! by `utoipa` from the `#[utoipa::path]` attribute on each handler and the schemas of the
//! request and response types.
//!
//! A route's own errors are listed on its handler, one response per status whose description
//! names its codes (`"OUT_OF_STOCK, TOO_MANY_PENDING_ORDERS"`). `CommonErrors` then adds what
//! every route of a kind can answer (a bad body or path id, the admin token, the buyer's token,
//! an engine that does not answer) and gives every error response the `ErrorBody` schema with
//! `code` narrowed to the codes listed, so a client (or a fuzzer) can check each error it gets.

use std::sync::OnceLock;

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::handlers;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "commerce-engine",
        description = "An in-memory commerce engine: points, products, first-come coupons, \
                       orders with expiry, payments. The contract is docs/spec.md."
    ),
    paths(
        handlers::health,
        handlers::metrics,
        openapi_json,
        handlers::points,
        handlers::charge,
        handlers::user_coupons,
        handlers::user_orders,
        handlers::products,
        handlers::popular,
        handlers::product,
        handlers::issue_coupon,
        handlers::coupon,
        handlers::place_order,
        handlers::order,
        handlers::pay,
        handlers::cancel,
        handlers::create_user,
        handlers::create_product,
        handlers::restock,
        handlers::create_coupon,
        handlers::snapshot,
        handlers::audit,
    ),
    components(schemas(super::error::ErrorBody)),
    modifiers(&CommonErrors)
)]
struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 description of every route")))]
pub async fn openapi_json() -> Result<warp::reply::Response, std::convert::Infallible> {
    use warp::Reply;
    Ok(warp::reply::json(document()).into_response())
}

/// Adds the errors routes share and gives each error response its schema (see the module).
struct CommonErrors;

/// Routes that never touch the engine, and so never answer 503.
const OPERATIONS: &[&str] = &["/health", "/metrics", "/openapi.json"];

impl Modify for CommonErrors {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "buyer_jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        for (path, item) in document.paths.paths.iter_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.head];
            for operation in operations.into_iter().flatten() {
                add_common_errors(path, operation);
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        narrow_codes(response);
                    }
                }
            }
        }
    }
}

/// What a route can answer beyond its own errors, by what it takes.
fn add_common_errors(path: &str, operation: &mut Operation) {
    if OPERATIONS.contains(&path) {
        return;
    }
    let takes_body = operation.request_body.is_some();
    if takes_body || path.contains('{') {
        add_codes(operation, "400", &["INVALID_REQUEST"]);
    }
    if takes_body {
        add_codes(operation, "413", &["PAYLOAD_TOO_LARGE"]);
        add_codes(operation, "415", &["UNSUPPORTED_MEDIA_TYPE"]);
    }
    if path.starts_with("/admin/") {
        // 404 NOT_FOUND: the admin API is disabled (no admin.token).
        add_codes(operation, "401", &["UNAUTHORIZED"]);
        add_codes(operation, "404", &["NOT_FOUND"]);
    } else if is_buyer_route(path) {
        // With auth.mode = "jwt".
        operation.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new::<_, _, String>("buyer_jwt", []),
            utoipa::openapi::security::SecurityRequirement::default(),
        ]);
        add_codes(operation, "401", &["UNAUTHORIZED"]);
        if path != "/orders/{order_id}" {
            add_codes(operation, "403", &["FORBIDDEN"]);
        }
    }
    add_codes(operation, "503", &["UNAVAILABLE"]);
}

/// The routes a buyer's token guards in `auth.mode = "jwt"` (docs/spec.md §2).
fn is_buyer_route(path: &str) -> bool {
    path.starts_with("/users/") || path.starts_with("/orders") || path.ends_with("/issue")
}

/// Adds `codes` to the response for `status`, creating it if the route has none.
fn add_codes(operation: &mut Operation, status: &str, codes: &[&str]) {
    let responses = &mut operation.responses.responses;
    let response = responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(ResponseBuilder::new().description("").build()));
    if let RefOr::T(response) = response {
        let mut listed: Vec<String> = listed_codes(&response.description);
        for code in codes {
            if !listed.iter().any(|listed| listed == code) {
                listed.push(code.to_string());
            }
        }
        response.description = listed.join(", ");
    }
}

fn listed_codes(description: &str) -> Vec<String> {
    description
        .split(',')
        .map(str::trim)
        .filter(|code| !code.is_empty())
        .map(str::to_string)
        .collect()
}

/// An error response (its description lists its codes) gets the error body's schema with
/// `code` limited to those codes.
fn narrow_codes(response: &mut utoipa::openapi::Response) {
    let codes = listed_codes(&response.description);
    let is_error = !codes.is_empty()
        && codes
            .iter()
            .all(|code| code.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
    if !is_error {
        return;
    }
    let code = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes.clone()))
        .build();
    let narrowed = ObjectBuilder::new().property("code", code).build();
    let schema = AllOfBuilder::new()
        .item(Ref::from_schema_name("ErrorBody"))
        .item(narrowed)
        .build();
    let schema = utoipa::openapi::schema::Schema::AllOf(schema);
    let content = ContentBuilder::new().schema(Some(schema)).build();
    response
        .content
        .insert("application/json".to_string(), content);
}
