//! The route table: every route's method and path template (docs/spec.md §2). `GET /metrics`
//! labels each request with its route's template, a `405` lists the methods its path accepts,
//! and tests hold both the router (`tests/metrics.rs`) and `GET /openapi.json`
//! (`tests/openapi.rs`) to this one list.

/// One route of docs/spec.md §2: its method and its path template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

const fn route(method: &'static str, path: &'static str) -> Route {
    Route { method, path }
}

/// Every route the router serves. `GET /metrics` labels requests with these templates, and a
/// test holds the router and `GET /openapi.json` to this list. A literal segment comes before
/// a parameter in the same place (`/products/popular` before `/products/{product_id}`):
/// the first template that fits a path names it.
pub const ROUTES: &[Route] = &[
    route("GET", "/health"),
    route("HEAD", "/health"),
    route("GET", "/metrics"),
    route("GET", "/openapi.json"),
    route("GET", "/users/{user_id}/points"),
    route("POST", "/users/{user_id}/points/charge"),
    route("GET", "/users/{user_id}/coupons"),
    route("GET", "/users/{user_id}/orders"),
    route("GET", "/products"),
    route("GET", "/products/popular"),
    route("GET", "/products/{product_id}"),
    route("POST", "/coupons/{coupon_id}/issue"),
    route("GET", "/coupons/{coupon_id}"),
    route("POST", "/orders"),
    route("GET", "/orders/{order_id}"),
    route("POST", "/orders/{order_id}/payment"),
    route("POST", "/orders/{order_id}/cancel"),
    route("POST", "/admin/users"),
    route("POST", "/admin/products"),
    route(
        "POST",
        "/admin/products/{product_id}/options/{option_id}/restock",
    ),
    route("POST", "/admin/coupons"),
    route("POST", "/admin/snapshot"),
    route("GET", "/admin/audit"),
];

/// The label of a request to a path that no route serves.
pub const UNMATCHED: &str = "unmatched";

/// The template of the first route whose path fits `path`, whatever its method.
pub fn template_of(path: &str) -> &'static str {
    let fits = |template: &str| {
        let mut segments = path.split('/');
        let mut parts = template.split('/');
        loop {
            match (segments.next(), parts.next()) {
                (None, None) => return true,
                (Some(segment), Some(part)) if part.starts_with('{') || part == segment => {}
                _ => return false,
            }
        }
    };
    ROUTES
        .iter()
        .find(|route| fits(route.path))
        .map_or(UNMATCHED, |route| route.path)
}

/// The methods the routes of `template` accept, as an `Allow` header lists them.
pub fn allowed_methods(template: &str) -> String {
    let methods: Vec<&str> = ROUTES
        .iter()
        .filter(|route| route.path == template)
        .map(|route| route.method)
        .collect();
    methods.join(", ")
}

/// A method as a metric label: one of a fixed few.
pub fn method_label(method: &warp::http::Method) -> &'static str {
    use warp::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
