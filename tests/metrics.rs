//! `GET /metrics`: business counters, refusals by code, HTTP requests by route template with
//! their latency, and gauges, in the Prometheus text format; off with `metrics.enabled =
//! false`. And the route table the labels come from: every entry is a route the router serves.

mod helpers;

use commerce_engine::http::RouteOptions;
use commerce_engine::http::route_table::{ROUTES, UNMATCHED, template_of};
use helpers::Api;
use serde_json::json;

/// The value of the sample named exactly `series` (name and labels as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn business_outcomes_and_requests_are_counted() {
    let engine = helpers::small_engine().await;
    let api = Api::new(&engine);
    let order =
        |quantity| json!({"user_id": 1, "items": [{"product_id": 2, "quantity": quantity}]});
    let placed = api.post("/orders", order(1)).await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let order_id = placed.body["order_id"].as_u64().unwrap();
    let refused = api.post("/orders", order(1_000)).await;
    assert_eq!(refused.code(), "OUT_OF_STOCK");
    let paid = api
        .post(
            &format!("/orders/{order_id}/payment"),
            json!({"user_id": 1}),
        )
        .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    let again = api
        .post(
            &format!("/orders/{order_id}/payment"),
            json!({"user_id": 1}),
        )
        .await;
    assert_eq!(again.code(), "ORDER_ALREADY_PAID");
    let issued = api.post("/coupons/1/issue", json!({"user_id": 2})).await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    assert_eq!(
        api.post("/coupons/3/issue", json!({"user_id": 2}))
            .await
            .code(),
        "COUPON_EXPIRED"
    );
    api.post("/users/3/points/charge", json!({"amount": 500}))
        .await;
    api.post("/orders", order(1)).await; // stays PENDING
    assert_eq!(api.get("/no/such/route").await.status, 404);

    // The pending-orders gauge is kept by the order supervisor, which buyers arm and disarm
    // without waiting: a round trip to it lets those messages land first.
    engine.watched_deadlines().await.unwrap();
    let reply = api.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = reply.text;
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    };
    expect("commerce_orders_placed_total", 2.0);
    expect("commerce_orders_paid_total", 1.0);
    expect("commerce_order_refusals_total{code=\"OUT_OF_STOCK\"}", 1.0);
    expect(
        "commerce_payment_refusals_total{code=\"ORDER_ALREADY_PAID\"}",
        1.0,
    );
    expect("commerce_coupons_issued_total", 1.0);
    expect(
        "commerce_coupon_issue_refusals_total{code=\"COUPON_EXPIRED\"}",
        1.0,
    );
    expect("commerce_charges_total", 1.0);
    expect("commerce_charged_points_total", 500.0);
    expect("commerce_pending_orders", 1.0);
    // Only the entities messaged run (users 1, 2 and 3, product 2, coupons 1 and 3: actors
    // start with their first message), and the three service actors.
    expect("commerce_running_actors", 9.0);
    let payment = "route=\"/orders/{order_id}/payment\",method=\"POST\"";
    expect(
        &format!("commerce_http_requests_total{{{payment},status=\"200\"}}"),
        1.0,
    );
    expect(
        &format!("commerce_http_requests_total{{{payment},status=\"409\"}}"),
        1.0,
    );
    expect(
        &format!("commerce_http_request_duration_seconds_count{{{payment}}}"),
        2.0,
    );
    expect(
        &format!("commerce_http_request_duration_seconds_bucket{{{payment},le=\"+Inf\"}}"),
        2.0,
    );
    expect(
        "commerce_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}",
        1.0,
    );
    assert!(
        text.contains("# TYPE commerce_orders_paid_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# HELP commerce_orders_paid_total Orders paid"),
        "{text}"
    );
    engine.stop().await;
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let engine = helpers::small_engine().await;
    let options = RouteOptions {
        body_limit_bytes: 16_384,
        admin_token: helpers::ADMIN_TOKEN.into(),
        buyers: Default::default(),
        metrics: false,
    };
    let reply = Api::with_options(&engine, options).get("/metrics").await;
    assert_eq!((reply.status.as_u16(), reply.code()), (404, "NOT_FOUND"));
    engine.stop().await;
}

/// Each route of the table, with every parameter 1, reaches a handler: never the router's own
/// "no such route" (404 NOT_FOUND) or "wrong method" (405). And its path is labelled with its
/// own template.
#[tokio::test]
async fn every_route_in_the_table_is_served() {
    let engine = helpers::small_engine().await;
    let api = Api::new(&engine).authorized(helpers::ADMIN_TOKEN);
    for route in ROUTES {
        let path: String = route
            .path
            .split('/')
            .map(|part| if part.starts_with('{') { "1" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        assert_eq!(template_of(&path), route.path);
        let body = (route.method == "POST").then(|| b"{}".to_vec());
        let reply = api.send(route.method, &path, body).await;
        let status = reply.status.as_u16();
        assert_ne!(status, 405, "{} {path}", route.method);
        assert!(
            !(status == 404 && reply.code() == "NOT_FOUND"),
            "{} {path}: no route",
            route.method
        );
    }
    let wrong_method = api.send("DELETE", "/health", None).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.headers["allow"], "GET, HEAD");
    assert_eq!(template_of("/users/1/points/extra"), UNMATCHED);
    assert_eq!(template_of("/health/"), UNMATCHED);
    assert_eq!(template_of("/products/popular"), "/products/popular");
    engine.stop().await;
}
