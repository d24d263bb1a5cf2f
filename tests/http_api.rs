//! Every endpoint of docs/spec.md §2 over the real warp routes: each success shape and each
//! error code, the JSON error body, and that failed requests change nothing.

mod helpers;

use helpers::{Api, assert_audit_ok, small_engine};
use serde_json::json;
use warp::http::StatusCode;

#[tokio::test]
async fn health_answers_ok() {
    let api = Api::new(&small_engine().await);
    let reply = api.get("/health").await;
    assert_eq!(
        (reply.status, reply.body.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
}

#[tokio::test]
async fn points_balance_and_charge() {
    let api = Api::new(&small_engine().await);
    let balance = api.get("/users/3/points").await;
    assert_eq!(balance.status, StatusCode::OK);
    assert_eq!(balance.body, json!({"user_id": 3, "balance": 100_000}));
    let charged = api
        .post("/users/3/points/charge", json!({"amount": 5_000}))
        .await;
    assert_eq!(charged.status, StatusCode::OK);
    assert_eq!(charged.body, json!({"user_id": 3, "balance": 105_000}));
    assert_eq!(api.get("/users/3/points").await.body["balance"], 105_000);
}

#[tokio::test]
async fn bad_amounts_are_invalid_amount_and_change_nothing() {
    let api = Api::new(&small_engine().await);
    for amount in [
        json!(-5),
        json!(0),
        json!(1.5),
        json!("100"),
        json!(null),
        json!(1_000_001),
    ] {
        let reply = api
            .post("/users/1/points/charge", json!({ "amount": amount }))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "INVALID_AMOUNT"),
            "{amount}"
        );
        assert!(reply.body["message"].as_str().unwrap().contains("amount"));
    }
    assert_eq!(api.get("/users/1/points").await.body["balance"], 100_000);
}

#[tokio::test]
async fn charging_past_the_balance_limit_is_a_conflict() {
    let api = Api::new(&small_engine().await);
    for _ in 0..99 {
        assert_eq!(
            api.post("/users/1/points/charge", json!({"amount": 1_000_000}))
                .await
                .status,
            StatusCode::OK
        );
    }
    // 100,000 + 99 x 1,000,000 = 99,100,000; one more million would pass 100,000,000.
    let reply = api
        .post("/users/1/points/charge", json!({"amount": 1_000_000}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED")
    );
    assert_eq!(api.get("/users/1/points").await.body["balance"], 99_100_000);
}

#[tokio::test]
async fn unknown_users_and_bad_ids() {
    let api = Api::new(&small_engine().await);
    for path in [
        "/users/999/points",
        "/users/999/coupons",
        "/users/999/orders",
    ] {
        let reply = api.get(path).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::NOT_FOUND, "USER_NOT_FOUND"),
            "{path}"
        );
    }
    let charge = api
        .post("/users/999/points/charge", json!({"amount": 1}))
        .await;
    assert_eq!(charge.code(), "USER_NOT_FOUND");
    for path in [
        "/users/abc/points",
        "/users/0/points",
        "/users/-1/points",
        "/orders/0",
        "/products/x",
        "/coupons/1.5",
    ] {
        let reply = api.get(path).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn malformed_bodies_are_invalid_requests() {
    let api = Api::new(&small_engine().await);
    let cases: [&[u8]; 5] = [
        b"{not json",
        b"[1,2]",
        br#"{"amount": 5, "extra": 1}"#,
        br#"{"user_id": 1}"#,
        b"",
    ];
    for body in cases {
        let reply = api.post_raw("/users/1/points/charge", body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            "{body:?}"
        );
        assert!(reply.content_type.starts_with("application/json"));
    }
    let wrong_type = api
        .post("/orders", json!({"user_id": "one", "items": []}))
        .await;
    assert_eq!(wrong_type.code(), "INVALID_REQUEST");
    let oversized = vec![b' '; 20_000];
    let reply = api.post_raw("/users/1/points/charge", &oversized).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
    );
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods() {
    let api = Api::new(&small_engine().await);
    let missing = api.get("/nowhere").await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    assert!(missing.content_type.starts_with("application/json"));
    let wrong = api.send("DELETE", "/users/1/points", None).await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
    );
    let get_charge = api.get("/users/1/points/charge").await;
    assert_eq!(get_charge.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        api.send("PUT", "/products", None).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn product_listing_filters_sorts_and_pages() {
    let api = Api::new(&small_engine().await);
    let all = api.get("/products").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(
        (
            all.body["page"].clone(),
            all.body["size"].clone(),
            all.body["total"].clone()
        ),
        (json!(1), json!(20), json!(3))
    );
    let keyboard = &all.body["items"][0];
    assert_eq!(
        keyboard["options"],
        json!([{"id": 11, "name": "Red", "stock": 50}, {"id": 12, "name": "Blue", "stock": 5}])
    );
    let ids = |reply: &helpers::Reply| -> Vec<u64> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&api.get("/products?category=home").await), vec![2]);
    assert_eq!(ids(&api.get("/products?option=Blue").await), vec![1]);
    assert_eq!(
        ids(&api.get("/products?min_price=10000&max_price=50000").await),
        vec![1, 2]
    );
    assert_eq!(ids(&api.get("/products?in_stock=true").await), vec![1, 2]);
    assert_eq!(ids(&api.get("/products?in_stock=false").await), vec![3]);
    assert_eq!(
        ids(&api.get("/products?sort=price_desc").await),
        vec![3, 1, 2]
    );
    assert_eq!(
        ids(&api.get("/products?sort=price_asc&page=2&size=2").await),
        vec![3]
    );
    let none = api.get("/products?category=spaceships").await;
    assert_eq!(
        (none.status, ids(&none), none.body["total"].clone()),
        (StatusCode::OK, vec![], json!(0))
    );
}

#[tokio::test]
async fn bad_product_queries_are_invalid_query() {
    let api = Api::new(&small_engine().await);
    for query in [
        "colour=red",
        "category=",
        "min_price=-1",
        "in_stock=yes",
        "page=0",
        "size=101",
        "min_price=9&max_price=1",
        "sort=random",
    ] {
        let reply = api.get(&format!("/products?{query}")).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
            "{query}"
        );
    }
    for query in ["days=0", "days=31", "limit=0", "limit=101", "when=today"] {
        let reply = api.get(&format!("/products/popular?{query}")).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
            "{query}"
        );
    }
}

#[tokio::test]
async fn single_product_lookup() {
    let api = Api::new(&small_engine().await);
    let mug = api.get("/products/2").await;
    assert_eq!(mug.status, StatusCode::OK);
    assert_eq!(
        mug.body,
        json!({"id": 2, "name": "Mug", "category": "home", "price": 10_000, "options": [{"id": 21, "name": "White", "stock": 100}], "purchase_limit": null})
    );
    let missing = api.get("/products/99").await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND")
    );
}

#[tokio::test]
async fn coupon_issue_and_its_errors() {
    let engine = helpers::engine(helpers::catalog(10, 100_000, 50, 2)).await;
    let api = Api::new(&engine);
    let issued = api.post("/coupons/1/issue", json!({"user_id": 1})).await;
    assert_eq!(issued.status, StatusCode::CREATED);
    assert_eq!(issued.body["status"], "AVAILABLE");
    assert_eq!(
        issued.body["discount"],
        json!({"type": "FIXED", "amount": 3_000})
    );
    for field in [
        "coupon_id",
        "user_id",
        "name",
        "issued_at",
        "used_at",
        "order_id",
        "expires_at",
    ] {
        assert!(issued.body.get(field).is_some(), "UserCoupon lacks {field}");
    }
    let cases = [
        (
            "/coupons/9/issue",
            1,
            StatusCode::NOT_FOUND,
            "COUPON_NOT_FOUND",
        ),
        (
            "/coupons/1/issue",
            999,
            StatusCode::NOT_FOUND,
            "USER_NOT_FOUND",
        ),
        (
            "/coupons/1/issue",
            1,
            StatusCode::CONFLICT,
            "COUPON_ALREADY_ISSUED",
        ),
        (
            "/coupons/3/issue",
            1,
            StatusCode::CONFLICT,
            "COUPON_EXPIRED",
        ),
    ];
    for (path, user_id, status, code) in cases {
        let reply = api.post(path, json!({ "user_id": user_id })).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{path} user {user_id}"
        );
    }
    assert_eq!(
        api.post("/coupons/1/issue", json!({"user_id": 2}))
            .await
            .status,
        StatusCode::CREATED
    );
    let sold_out = api.post("/coupons/1/issue", json!({"user_id": 3})).await;
    assert_eq!(
        (sold_out.status, sold_out.code()),
        (StatusCode::CONFLICT, "COUPON_SOLD_OUT")
    );
    let coupon = api.get("/coupons/1").await;
    assert_eq!(
        coupon.body,
        json!({"id": 1, "name": "3,000 off", "discount": {"type": "FIXED", "amount": 3_000}, "total_quantity": 2, "remaining_quantity": 0, "expires_at": null})
    );
    assert_eq!(api.get("/coupons/9").await.code(), "COUPON_NOT_FOUND");
    let held = api.get("/users/1/coupons").await;
    assert_eq!(held.body["user_id"], 1);
    assert_eq!(held.body["coupons"].as_array().unwrap().len(), 1);
    assert_eq!(api.get("/users/3/coupons").await.body["coupons"], json!([]));
    assert_audit_ok(&engine).await;
}

fn one_line(user_id: u64, product_id: u64, option_id: u64, quantity: u64) -> serde_json::Value {
    json!({"user_id": user_id, "items": [{"product_id": product_id, "option_id": option_id, "quantity": quantity}]})
}

async fn stock(api: &Api, product_id: u64, option_index: usize) -> u64 {
    let product = api.get(&format!("/products/{product_id}")).await;
    product.body["options"][option_index]["stock"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn placing_an_order_reserves_stock() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    let body = json!({"user_id": 1, "items": [
        {"product_id": 1, "option_id": 11, "quantity": 2},
        {"product_id": 2, "quantity": 3}
    ]});
    let placed = api.post("/orders", body).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order = &placed.body;
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["total_amount"], 2 * 50_000 + 3 * 10_000);
    assert_eq!(
        order["items"][1],
        json!({"product_id": 2, "option_id": 21, "name": "Mug", "quantity": 3, "unit_price": 10_000, "line_total": 30_000})
    );
    for field in ["coupon_id", "discount_amount", "paid_amount", "paid_at"] {
        assert_eq!(order[field], json!(null), "{field} is null until paid");
    }
    assert!(order["expires_at"].as_str().unwrap() > order["created_at"].as_str().unwrap());
    assert_eq!(stock(&api, 1, 0).await, 48, "visible stock drops at once");
    assert_eq!(stock(&api, 2, 0).await, 97);
    let fetched = api.get(&format!("/orders/{}", order["order_id"])).await;
    assert_eq!((fetched.status, &fetched.body), (StatusCode::OK, order));
    assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn invalid_orders_are_rejected_before_anything_is_reserved() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    let too_many: Vec<_> = (0..51)
        .map(|_| json!({"product_id": 2, "quantity": 1}))
        .collect();
    let cases = [
        json!({"user_id": 1, "items": []}),
        json!({"user_id": 1, "items": too_many}),
        one_line(1, 2, 21, 0),
        json!({"user_id": 1, "items": [{"product_id": 2, "quantity": -1}]}),
        one_line(1, 2, 21, 1_001),
        json!({"user_id": 1, "items": [{"product_id": 1, "quantity": 1}]}),
        json!({"user_id": 1, "items": [{"product_id": 2, "quantity": 1}, {"product_id": 2, "option_id": 21, "quantity": 1}]}),
    ];
    for body in cases {
        let reply = api.post("/orders", body.clone()).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "INVALID_ORDER"),
            "{body}"
        );
    }
    let not_found = [
        (one_line(999, 2, 21, 1), "USER_NOT_FOUND"),
        (one_line(1, 99, 21, 1), "PRODUCT_NOT_FOUND"),
        (one_line(1, 2, 11, 1), "OPTION_NOT_FOUND"),
    ];
    for (body, code) in not_found {
        let reply = api.post("/orders", body).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, code));
    }
    assert_eq!(stock(&api, 2, 0).await, 100);
    assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn an_order_short_on_one_line_reserves_nothing() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    let body = json!({"user_id": 1, "items": [
        {"product_id": 2, "quantity": 10},
        {"product_id": 1, "option_id": 12, "quantity": 6}
    ]});
    let reply = api.post("/orders", body).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "OUT_OF_STOCK")
    );
    let message = reply.body["message"].as_str().unwrap();
    assert!(message.contains("option 12"), "names the line: {message}");
    assert_eq!(stock(&api, 2, 0).await, 100, "the mugs were given back");
    assert_eq!(stock(&api, 1, 1).await, 5);
    assert_eq!(api.get("/users/1/orders").await.body["orders"], json!([]));
    assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn orders_list_newest_first_and_unknown_orders() {
    let api = Api::new(&small_engine().await);
    let first = api.post("/orders", one_line(1, 2, 21, 1)).await.body["order_id"].clone();
    let second = api.post("/orders", one_line(1, 2, 21, 2)).await.body["order_id"].clone();
    let listed = api.get("/users/1/orders").await;
    assert_eq!(listed.body["user_id"], 1);
    let ids: Vec<_> = listed.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].clone())
        .collect();
    assert_eq!(ids, vec![second, first]);
    let missing = api.get("/orders/12345").await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "ORDER_NOT_FOUND")
    );
}

#[tokio::test]
async fn payment_with_a_coupon_and_the_popular_ranking() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    api.post("/coupons/2/issue", json!({"user_id": 1})).await;
    let order = api.post("/orders", one_line(1, 1, 11, 1)).await.body["order_id"]
        .as_u64()
        .unwrap();
    let paid = api
        .post(
            &format!("/orders/{order}/payment"),
            json!({"user_id": 1, "coupon_id": 2}),
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(paid.body["status"], "PAID");
    assert_eq!(
        (
            paid.body["total_amount"].clone(),
            paid.body["discount_amount"].clone()
        ),
        (json!(50_000), json!(5_000))
    );
    assert_eq!(
        (
            paid.body["paid_amount"].clone(),
            paid.body["balance"].clone()
        ),
        (json!(45_000), json!(55_000))
    );
    assert_eq!(paid.body["coupon_id"], 2);
    assert!(paid.body["paid_at"].is_string());
    let coupons = api.get("/users/1/coupons").await;
    assert_eq!(coupons.body["coupons"][0]["status"], "USED");
    assert_eq!(coupons.body["coupons"][0]["order_id"], order);
    let stored = api.get(&format!("/orders/{order}")).await;
    assert_eq!(
        (
            stored.body["status"].clone(),
            stored.body["paid_amount"].clone()
        ),
        (json!("PAID"), json!(45_000))
    );

    let second = api.post("/orders", one_line(2, 2, 21, 3)).await.body["order_id"]
        .as_u64()
        .unwrap();
    api.post(&format!("/orders/{second}/payment"), json!({"user_id": 2}))
        .await;
    api.post("/orders", one_line(3, 1, 12, 1)).await; // pending: not counted
    let popular = api.get("/products/popular").await;
    assert_eq!(popular.status, StatusCode::OK);
    assert_eq!(
        popular.body,
        json!({"days": 3, "limit": 5, "items": [
            {"rank": 1, "product_id": 2, "name": "Mug", "sold_quantity": 3},
            {"rank": 2, "product_id": 1, "name": "Keyboard", "sold_quantity": 1}
        ]})
    );
    assert_eq!(
        api.get("/products/popular?days=1&limit=1").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn payment_errors_leave_everything_as_it_was() {
    let engine = helpers::engine(helpers::catalog(10, 40_000, 50, 30)).await;
    let api = Api::new(&engine);
    let order = api.post("/orders", one_line(1, 1, 11, 1)).await.body["order_id"]
        .as_u64()
        .unwrap();
    let path = format!("/orders/{order}/payment");
    let pay = |body| api.post(&path, body);
    let cases = [
        (
            json!({"user_id": 2}),
            StatusCode::NOT_FOUND,
            "ORDER_NOT_FOUND",
        ),
        (
            json!({"user_id": 999}),
            StatusCode::NOT_FOUND,
            "ORDER_NOT_FOUND",
        ),
        (
            json!({"user_id": 1, "coupon_id": 1}),
            StatusCode::CONFLICT,
            "COUPON_NOT_USABLE",
        ),
        (
            json!({"user_id": 1}),
            StatusCode::CONFLICT,
            "INSUFFICIENT_BALANCE",
        ),
    ];
    for (body, status, code) in cases {
        let reply = pay(body.clone()).await;
        assert_eq!((reply.status, reply.code()), (status, code), "{body}");
    }
    assert_eq!(
        api.post("/orders/999/payment", json!({"user_id": 1}))
            .await
            .code(),
        "ORDER_NOT_FOUND"
    );
    assert_eq!(
        api.get(&format!("/orders/{order}")).await.body["status"],
        "PENDING"
    );
    assert_eq!(api.get("/users/1/points").await.body["balance"], 40_000);
    // Charge and retry: the order is still payable.
    api.post("/users/1/points/charge", json!({"amount": 10_000}))
        .await;
    assert_eq!(pay(json!({"user_id": 1})).await.status, StatusCode::OK);
    let again = pay(json!({"user_id": 1})).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "ORDER_ALREADY_PAID")
    );
    assert_eq!(api.get("/users/1/points").await.body["balance"], 0);
    assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn a_used_or_expired_coupon_is_not_usable() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    api.post("/coupons/1/issue", json!({"user_id": 1})).await;
    let first = api.post("/orders", one_line(1, 2, 21, 1)).await.body["order_id"]
        .as_u64()
        .unwrap();
    let second = api.post("/orders", one_line(1, 2, 21, 1)).await.body["order_id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        api.post(
            &format!("/orders/{first}/payment"),
            json!({"user_id": 1, "coupon_id": 1})
        )
        .await
        .status,
        StatusCode::OK
    );
    let reused = api
        .post(
            &format!("/orders/{second}/payment"),
            json!({"user_id": 1, "coupon_id": 1}),
        )
        .await;
    assert_eq!(reused.code(), "COUPON_NOT_USABLE");
    assert!(reused.body["message"].as_str().unwrap().contains("used"));
    assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn cancel_releases_stock_once() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    let order = api.post("/orders", one_line(1, 1, 12, 5)).await.body["order_id"]
        .as_u64()
        .unwrap();
    assert_eq!(stock(&api, 1, 1).await, 0);
    let stranger = api
        .post(&format!("/orders/{order}/cancel"), json!({"user_id": 2}))
        .await;
    assert_eq!(
        (stranger.status, stranger.code()),
        (StatusCode::NOT_FOUND, "ORDER_NOT_FOUND")
    );
    let cancelled = api
        .post(&format!("/orders/{order}/cancel"), json!({"user_id": 1}))
        .await;
    assert_eq!(
        (cancelled.status, cancelled.body["status"].clone()),
        (StatusCode::OK, json!("CANCELLED"))
    );
    assert_eq!(
        stock(&api, 1, 1).await,
        5,
        "stock is orderable again when the reply arrives"
    );
    let again = api
        .post(&format!("/orders/{order}/cancel"), json!({"user_id": 1}))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "ORDER_NOT_CANCELLABLE")
    );
    let pay = api
        .post(&format!("/orders/{order}/payment"), json!({"user_id": 1}))
        .await;
    assert_eq!(
        (pay.status, pay.code()),
        (StatusCode::CONFLICT, "ORDER_CANCELLED")
    );
    assert_eq!(stock(&api, 1, 1).await, 5);
    assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn the_admin_api_is_off_without_a_token_and_locked_with_one() {
    let engine = small_engine().await;
    let disabled = Api::with_token(&engine, "");
    for (method, path) in [
        ("GET", "/admin/audit"),
        ("POST", "/admin/users"),
        ("GET", "/admin/users"),
    ] {
        let reply = disabled
            .authorized("anything")
            .send(method, path, Some(b"{}".to_vec()))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::NOT_FOUND, "NOT_FOUND"),
            "{method} {path}"
        );
    }
    let locked = Api::new(&engine);
    let missing = locked.get("/admin/audit").await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    let wrong = Api::new(&engine)
        .authorized("not-the-token")
        .get("/admin/audit")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let created = locked.post("/admin/users", json!({})).await;
    assert_eq!(
        created.status,
        StatusCode::UNAUTHORIZED,
        "no user was created"
    );
    assert_eq!(
        Api::new(&engine).get("/users/11/points").await.code(),
        "USER_NOT_FOUND"
    );
}

#[tokio::test]
async fn admin_creates_users_products_coupons_and_restocks() {
    let engine = small_engine().await;
    let admin = Api::new(&engine).authorized(helpers::ADMIN_TOKEN);
    let user = admin.post("/admin/users", json!({"balance": 7_000})).await;
    assert_eq!(
        (user.status, user.body.clone()),
        (
            StatusCode::CREATED,
            json!({"user_id": 11, "balance": 7_000})
        )
    );
    let chosen = admin.post("/admin/users", json!({"user_id": 42})).await;
    assert_eq!(chosen.body, json!({"user_id": 42, "balance": 0}));
    let taken = admin.post("/admin/users", json!({"user_id": 42})).await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::CONFLICT, "USER_EXISTS")
    );
    assert_eq!(
        admin.post("/admin/users", json!({})).await.body["user_id"],
        43
    );

    let product = admin
        .post("/admin/products", json!({"name": "Lamp", "category": "home", "price": 30_000, "options": [{"name": "Warm", "stock": 3}, {"name": "Cool", "stock": 0}]}))
        .await;
    assert_eq!(product.status, StatusCode::CREATED, "{}", product.body);
    assert_eq!(product.body["id"], 4);
    assert_eq!(
        product.body["options"],
        json!([{"id": 32, "name": "Warm", "stock": 3}, {"id": 33, "name": "Cool", "stock": 0}])
    );
    let restocked = admin
        .post(
            "/admin/products/4/options/33/restock",
            json!({"quantity": 10}),
        )
        .await;
    assert_eq!(
        (
            restocked.status,
            restocked.body["options"][1]["stock"].clone()
        ),
        (StatusCode::OK, json!(10))
    );
    let wrong_option = admin
        .post(
            "/admin/products/4/options/11/restock",
            json!({"quantity": 1}),
        )
        .await;
    assert_eq!(wrong_option.code(), "OPTION_NOT_FOUND");
    assert_eq!(
        admin
            .post(
                "/admin/products/99/options/1/restock",
                json!({"quantity": 1})
            )
            .await
            .code(),
        "PRODUCT_NOT_FOUND"
    );
    let invalid = admin
        .post(
            "/admin/products",
            json!({"name": "Nothing", "category": "home", "price": 1, "options": []}),
        )
        .await;
    assert_eq!(
        (invalid.status, invalid.code()),
        (StatusCode::BAD_REQUEST, "INVALID_REQUEST")
    );

    let coupon = admin
        .post("/admin/coupons", json!({"name": "Lamp day", "discount": {"type": "PERCENT", "percent": 20}, "quantity": 5, "expires_at": "2030-01-01T00:00:00Z"}))
        .await;
    assert_eq!(coupon.status, StatusCode::CREATED, "{}", coupon.body);
    assert_eq!(coupon.body["id"], 4);
    assert_eq!(coupon.body["remaining_quantity"], 5);
    assert_eq!(coupon.body["expires_at"], "2030-01-01T00:00:00.000Z");
    let bad_percent = admin
        .post(
            "/admin/coupons",
            json!({"name": "x", "discount": {"type": "PERCENT", "percent": 0}, "quantity": 1}),
        )
        .await;
    assert_eq!(bad_percent.code(), "INVALID_REQUEST");
    let bad_date = admin.post("/admin/coupons", json!({"name": "x", "discount": {"type": "FIXED", "amount": 1}, "quantity": 1, "expires_at": "someday"})).await;
    assert_eq!(bad_date.code(), "INVALID_REQUEST");

    // The new entities work like seeded ones.
    let issued = admin.post("/coupons/4/issue", json!({"user_id": 42})).await;
    assert_eq!(issued.status, StatusCode::CREATED);
    let order = admin.post("/orders", one_line(11, 4, 33, 2)).await;
    assert_eq!(order.status, StatusCode::CREATED);
    let audit = admin.get("/admin/audit").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert_eq!(audit.body["ok"], true, "{}", audit.body);
    let names: Vec<_> = audit.body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "stock_conservation",
            "coupon_quantity",
            "coupon_use",
            "money",
            "order_states",
            "popular_stats"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn paying_an_expired_order_is_order_expired() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    let order = api.post("/orders", one_line(1, 1, 12, 2)).await.body["order_id"]
        .as_u64()
        .unwrap();
    tokio::time::advance(helpers::EXPIRY).await;
    let late = api
        .post(&format!("/orders/{order}/payment"), json!({"user_id": 1}))
        .await;
    assert_eq!(
        (late.status, late.code()),
        (StatusCode::CONFLICT, "ORDER_EXPIRED")
    );
    // If the expiry timer won, the refusal did not wait for its release of the stock.
    helpers::settle().await;
    assert_eq!(
        api.get(&format!("/orders/{order}")).await.body["status"],
        "EXPIRED"
    );
    assert_eq!(api.get("/users/1/points").await.body["balance"], 100_000);
    assert_eq!(stock(&api, 1, 1).await, 5);
    let cancel = api
        .post(&format!("/orders/{order}/cancel"), json!({"user_id": 1}))
        .await;
    assert_eq!(cancel.code(), "ORDER_NOT_CANCELLABLE");
    assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn a_purchase_limit_caps_what_one_user_holds_of_a_product() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    let admin = api.authorized(helpers::ADMIN_TOKEN);
    let body = json!({"name": "Sneaker", "category": "fashion", "price": 100, "options": [{"name": "270", "stock": 10}], "purchase_limit": 2});
    let product = admin.post("/admin/products", body).await;
    assert_eq!(product.status, StatusCode::CREATED, "{}", product.body);
    assert_eq!(product.body["purchase_limit"], 2);
    let id = product.body["id"].as_u64().unwrap();
    assert_eq!(
        api.get(&format!("/products/{id}")).await.body["purchase_limit"],
        2
    );
    for zero in [json!(0), json!(-1), json!("2")] {
        let body = json!({"name": "Bad", "category": "x", "price": 1, "options": [{"name": "A", "stock": 1}], "purchase_limit": zero});
        let refused = admin.post("/admin/products", body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{zero}");
    }

    let order = |user_id: u64, quantity: u64| json!({"user_id": user_id, "items": [{"product_id": id, "quantity": quantity}]});
    let too_many = api.post("/orders", order(1, 3)).await;
    assert_eq!(
        (too_many.status, too_many.code()),
        (StatusCode::CONFLICT, "PURCHASE_LIMIT_EXCEEDED")
    );
    let message = too_many.body["message"].as_str().unwrap().to_string();
    assert!(message.contains(&format!("product {id}")), "{message}");
    let first = api.post("/orders", order(1, 1)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let paid = api
        .post(
            &format!("/orders/{}/payment", first.body["order_id"]),
            json!({"user_id": 1}),
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK);
    let second = api.post("/orders", order(1, 1)).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(
        api.post("/orders", order(1, 1)).await.code(),
        "PURCHASE_LIMIT_EXCEEDED"
    );
    let cancelled = api
        .post(
            &format!("/orders/{}/cancel", second.body["order_id"]),
            json!({"user_id": 1}),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK);
    assert_eq!(
        api.post("/orders", order(1, 1)).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        api.post("/orders", order(2, 2)).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        api.get(&format!("/products/{id}")).await.body["options"][0]["stock"],
        6
    );
    helpers::assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn admin_numbers_are_bounded_and_never_wrap() {
    let engine = small_engine().await;
    let admin = Api::new(&engine).authorized(helpers::ADMIN_TOKEN);
    let max = (1u64 << 53) - 1;
    for quantity in [u64::MAX, max] {
        let restock = admin
            .post(
                "/admin/products/2/options/21/restock",
                json!({ "quantity": quantity }),
            )
            .await;
        assert_eq!(
            (restock.status, restock.code()),
            (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            "{}",
            restock.body
        );
    }
    assert_eq!(
        stock(&admin, 2, 0).await,
        100,
        "a refused restock changes nothing"
    );

    let huge_id = admin
        .post("/admin/users", json!({"user_id": u64::MAX}))
        .await;
    assert_eq!(huge_id.code(), "INVALID_REQUEST");
    let next = admin.post("/admin/users", json!({})).await;
    assert_eq!(next.body["user_id"], 11, "the counter did not move");
    let at_limit = admin.post("/admin/users", json!({"user_id": max})).await;
    assert_eq!(at_limit.status, StatusCode::CREATED);
    let exhausted = admin.post("/admin/users", json!({})).await;
    assert_eq!(
        (exhausted.status, exhausted.code()),
        (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
        "ids never wrap to 0"
    );
    assert_eq!(
        Api::new(&engine).get("/users/0/points").await.code(),
        "INVALID_REQUEST"
    );

    let options = json!([{"name": "Only", "stock": 1}]);
    let price = admin
        .post(
            "/admin/products",
            json!({"name": "Gold", "category": "x", "price": max + 1, "options": options}),
        )
        .await;
    assert_eq!(price.code(), "INVALID_REQUEST");
    let stocked = admin
        .post("/admin/products", json!({"name": "Sand", "category": "x", "price": 1, "options": [{"name": "Grain", "stock": max + 1}]}))
        .await;
    assert_eq!(stocked.code(), "INVALID_REQUEST");
    let amount = admin
        .post(
            "/admin/coupons",
            json!({"name": "x", "discount": {"type": "FIXED", "amount": max + 1}, "quantity": 1}),
        )
        .await;
    assert_eq!(amount.code(), "INVALID_REQUEST");
    let quantity = admin
        .post("/admin/coupons", json!({"name": "x", "discount": {"type": "FIXED", "amount": 1}, "quantity": 10_000_001}))
        .await;
    assert_eq!(quantity.code(), "INVALID_REQUEST");
    assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn hostile_shapes_are_refused_with_json_errors() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    // Arrays where objects are expected: serde would read them field by field.
    for (path, body) in [
        ("/users/1/points/charge", "[5]"),
        ("/coupons/1/issue", "[7]"),
        ("/orders", "[7,[[1,11,1]]]"),
        ("/orders", r#"{"user_id":7,"items":[[1,11,1]]}"#),
        ("/orders", "5"),
    ] {
        let reply = api.post_raw(path, body.as_bytes()).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            "{path} {body}"
        );
    }
    // Ids in one spelling only.
    for path in [
        "/users/+1/points",
        "/users/01/points",
        "/products/01",
        "/orders/%201",
    ] {
        let reply = api.get(path).await;
        assert_eq!(reply.code(), "INVALID_REQUEST", "{path}");
    }
    // A body must be declared JSON.
    let body = br#"{"amount":5}"#.to_vec();
    for headers in [&[("content-type", "text/plain")][..], &[]] {
        let reply = api
            .send_with(
                "POST",
                "/users/1/points/charge",
                Some(body.clone()),
                headers,
            )
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
        );
    }
    let charset = [("content-type", "Application/JSON; charset=utf-8")];
    let reply = api
        .send_with("POST", "/users/1/points/charge", Some(body), &charset)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(api.get("/users/1/points").await.body["balance"], 100_005);
    // Long input is not echoed back whole.
    let long = "x".repeat(10_000);
    let reply = api.get(&format!("/products?{long}=1")).await;
    assert_eq!(reply.code(), "INVALID_QUERY");
    assert!(reply.body["message"].as_str().unwrap().chars().count() < 400);
    // HEAD /health answers like GET.
    let head = api.send("HEAD", "/health", None).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_bad_headers_are_plain_words() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    let token = format!("bearer {}", helpers::ADMIN_TOKEN);
    let audit = api
        .send_with("GET", "/admin/audit", None, &[("authorization", &token)])
        .await;
    assert_eq!(audit.status, StatusCode::OK);
    let wrong = api
        .send_with(
            "GET",
            "/admin/audit",
            None,
            &[("authorization", "Basic abc")],
        )
        .await;
    assert_eq!(wrong.code(), "UNAUTHORIZED");
}

#[tokio::test]
async fn admin_text_and_coupons_are_checked() {
    let engine = small_engine().await;
    let admin = Api::new(&engine).authorized(helpers::ADMIN_TOKEN);
    let options = json!([{"name": "Only", "stock": 1}]);
    let nul = admin
        .post(
            "/admin/products",
            json!({"name": "Bad\u{0}name", "category": "x", "price": 1, "options": options}),
        )
        .await;
    assert_eq!(nul.code(), "INVALID_REQUEST");
    assert!(nul.body["message"].as_str().unwrap().contains("name"));
    let free = admin
        .post(
            "/admin/products",
            json!({"name": "Sample", "category": "x", "price": 0, "options": options}),
        )
        .await;
    assert_eq!(
        free.status,
        StatusCode::CREATED,
        "a free product is allowed"
    );
    let zero = admin
        .post(
            "/admin/coupons",
            json!({"name": "x", "discount": {"type": "FIXED", "amount": 0}, "quantity": 1}),
        )
        .await;
    assert_eq!(zero.code(), "INVALID_REQUEST");
    let past = admin
        .post("/admin/coupons", json!({"name": "x", "discount": {"type": "FIXED", "amount": 1}, "quantity": 1, "expires_at": "2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(past.code(), "INVALID_REQUEST");
    let array = admin
        .post(
            "/admin/coupons",
            json!({"name": "x", "discount": ["FIXED", 1], "quantity": 1}),
        )
        .await;
    assert_eq!(array.code(), "INVALID_REQUEST");
    assert_audit_ok(&engine).await;
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    let id_of =
        |reply: &helpers::Reply| reply.headers["x-request-id"].to_str().unwrap().to_string();
    let ok = api.get("/health").await;
    let error = api.get("/nope").await;
    let bad = api.get("/users/abc/points").await;
    let (a, b, c) = (id_of(&ok), id_of(&error), id_of(&bad));
    assert!(!a.is_empty() && a != b && b != c, "new ids: {a} {b} {c}");
    let own = api
        .send_with(
            "GET",
            "/health",
            None,
            &[("x-request-id", "client-chose-this-1")],
        )
        .await;
    assert_eq!(id_of(&own), "client-chose-this-1");
    let too_long = "x".repeat(65);
    for unusable in [too_long.as_str(), "has space"] {
        let reply = api
            .send_with("GET", "/health", None, &[("x-request-id", unusable)])
            .await;
        assert_ne!(id_of(&reply), unusable);
        assert!(id_of(&reply).len() <= 64);
    }
}

#[tokio::test]
async fn a_users_orders_come_in_pages_newest_first() {
    let engine = small_engine().await;
    let api = Api::new(&engine);
    let mut placed = Vec::new();
    for _ in 0..12 {
        let order = api.post("/orders", one_line(1, 2, 21, 1)).await;
        let id = order.body["order_id"].as_u64().unwrap();
        placed.push(id);
        // Cancelled at once: the pending-order limit stays out of the way.
        api.post(&format!("/orders/{id}/cancel"), json!({"user_id": 1}))
            .await;
    }
    placed.reverse();
    let ids = |reply: &helpers::Reply| -> Vec<u64> {
        let orders = reply.body["orders"].as_array().unwrap();
        orders
            .iter()
            .map(|o| o["order_id"].as_u64().unwrap())
            .collect()
    };
    let first = api.get("/users/1/orders?limit=5").await;
    assert_eq!(ids(&first), placed[..5]);
    assert_eq!(first.body["next_before"], placed[4]);
    let before = placed[4];
    let second = api
        .get(&format!("/users/1/orders?limit=5&before={before}"))
        .await;
    assert_eq!(ids(&second), placed[5..10]);
    let before = second.body["next_before"].as_u64().unwrap();
    let last = api
        .get(&format!("/users/1/orders?limit=5&before={before}"))
        .await;
    assert_eq!(ids(&last), placed[10..]);
    assert_eq!(last.body["next_before"], serde_json::Value::Null);
    let all = api.get("/users/1/orders").await;
    assert_eq!(ids(&all), placed, "20 by default, so all 12");
    assert_eq!(all.body["next_before"], serde_json::Value::Null);
    for query in [
        "limit=0",
        "limit=101",
        "limit=x",
        "before=0",
        "before=-1",
        "page=2",
        "limit=",
    ] {
        let reply = api.get(&format!("/users/1/orders?{query}")).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
            "{query}"
        );
    }
}
