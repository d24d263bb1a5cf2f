//! The HTTP layer under arbitrary requests (proptest): random methods, paths built from the
//! API's own words and from junk, query strings, headers and bodies never produce a 5xx, a
//! panic, or an error without the JSON `{"code","message"}` body — and the audit stays ok
//! after all of them. A failure prints the shrunk request that caused it.

mod helpers;

use helpers::Api;
use proptest::prelude::*;

/// Every route of the API, with `{}` where an id goes, and its method.
const ROUTES: [(&str, &str); 20] = [
    ("GET", "/health"),
    ("GET", "/users/{}/points"),
    ("POST", "/users/{}/points/charge"),
    ("GET", "/users/{}/coupons"),
    ("GET", "/users/{}/orders"),
    ("GET", "/products"),
    ("GET", "/products/{}"),
    ("GET", "/products/popular"),
    ("GET", "/coupons/{}"),
    ("POST", "/coupons/{}/issue"),
    ("POST", "/orders"),
    ("GET", "/orders/{}"),
    ("POST", "/orders/{}/payment"),
    ("POST", "/orders/{}/cancel"),
    ("POST", "/admin/users"),
    ("POST", "/admin/products"),
    ("POST", "/admin/products/{}/options/{}/restock"),
    ("POST", "/admin/coupons"),
    ("POST", "/admin/snapshot"),
    ("GET", "/admin/audit"),
];

/// An id: mostly one that exists, sometimes junk.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (1u64..=12).prop_map(|id| id.to_string()),
        1 => prop::sample::select(vec![
            "0", "-1", "+1", "01", "abc", "%00", "99999999999999999999999", "18446744073709551615",
        ])
        .prop_map(String::from),
        1 => "[a-zA-Z0-9%+._~-]{0,12}",
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    let pair = prop_oneof![
        prop::sample::select(vec![
            "category=home",
            "option=Red",
            "min_price=0",
            "max_price=100000",
            "in_stock=true",
            "in_stock=yes",
            "sort=price_desc",
            "sort=x",
            "page=2",
            "size=100",
            "size=0",
            "days=3",
            "days=31",
            "limit=5",
            "limit=0",
            "before=3",
        ])
        .prop_map(String::from),
        "[a-z_]{0,8}=[a-zA-Z0-9%+-]{0,8}",
    ];
    prop::option::of(prop::collection::vec(pair, 0..4).prop_map(|pairs| pairs.join("&")))
}

/// A method and path: mostly a real route with its own method, sometimes junk.
fn request_line() -> impl Strategy<Value = (&'static str, String)> {
    let route = (
        prop::sample::select(ROUTES.to_vec()),
        id(),
        id(),
        query(),
        method(),
        0..10u8,
    )
        .prop_map(|((method, template), first, second, query, other, pick)| {
            let path = template
                .replacen("{}", &first, 1)
                .replacen("{}", &second, 1);
            let path = match query {
                Some(query) => format!("{path}?{query}"),
                None => path,
            };
            (if pick < 8 { method } else { other }, path)
        });
    let junk = (
        method(),
        prop::collection::vec("[a-zA-Z0-9%+._~-]{0,12}", 0..6),
    )
        .prop_map(|(method, segments)| (method, format!("/{}", segments.join("/"))));
    prop_oneof![4 => route, 1 => junk]
}

fn body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::sample::select(vec![
            r#"{"amount":5000}"#,
            r#"{"amount":-1}"#,
            r#"{"amount":1.5}"#,
            r#"{"amount":"5"}"#,
            r#"{"user_id":1}"#,
            r#"{"user_id":18446744073709551615}"#,
            r#"{"user_id":1,"items":[{"product_id":1,"option_id":11,"quantity":1}]}"#,
            r#"{"user_id":1,"items":[{"product_id":2,"quantity":1000000}]}"#,
            r#"{"user_id":2,"coupon_id":1}"#,
            r#"{"quantity":18446744073709551615}"#,
            r#"{"name":"x","category":"y","price":1,"options":[{"name":"o","stock":1}]}"#,
            r#"{"name":"c","discount":{"type":"PERCENT","percent":101},"quantity":1}"#,
            r#"[1,2,3]"#,
            r#"{"#,
            "null",
        ])
        .prop_map(|text| text.as_bytes().to_vec()),
    ])
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let content_type = prop_oneof![
        4 => Just("application/json"),
        1 => prop::sample::select(vec!["text/plain", "application/JSON; charset=x", ""]),
    ]
    .prop_map(|value| ("content-type", value.to_string()));
    let authorization = prop_oneof![
        4 => Just("Bearer test-admin-token"),
        1 => prop::sample::select(vec!["bearer nope", "Basic x", "Bearer"]),
    ]
    .prop_map(|value| ("authorization", value.to_string()));
    let request_id = "[ -~]{0,80}".prop_map(|value| ("x-request-id", value));
    (
        prop::option::weighted(0.9, content_type),
        prop::option::weighted(0.5, authorization),
        prop::option::of(request_id),
    )
        .prop_map(|(a, b, c)| [a, b, c].into_iter().flatten().collect())
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"])
}

#[test]
fn arbitrary_requests_get_json_errors_and_break_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // With a journal, as the server runs: `POST /admin/snapshot` writes one.
    let dir = tempfile::tempdir().unwrap();
    let seed = helpers::catalog(10, 100_000, 50, 30);
    let clock = commerce_engine::clock::Clock::system();
    let engine = runtime.block_on(helpers::open_in(dir.path(), seed, clock));
    let api = Api::new(&engine);
    let config = ProptestConfig {
        cases: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    proptest!(config, |((method, path) in request_line(), body in body(), headers in headers())| {
        let pairs: Vec<(&str, &str)> =
            headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let reply = runtime.block_on(api.send_with(method, &path, body, &pairs));
        *statuses.lock().unwrap().entry(reply.status.as_u16()).or_default() += 1;
        prop_assert!(reply.status.as_u16() < 500, "{method} {path}: {}", reply.status);
        if reply.status.as_u16() >= 400 && method != "HEAD" {
            prop_assert!(reply.content_type.starts_with("application/json"), "{method} {path}");
            prop_assert!(reply.body["code"].is_string() && reply.body["message"].is_string(),
                "{method} {path}: {}", reply.body);
        }
        prop_assert!(reply.headers.contains_key("x-request-id"));
    });
    let statuses = statuses.into_inner().unwrap();
    println!("statuses: {statuses:?}");
    let successes: usize = statuses.range(200..300).map(|(_, count)| count).sum();
    assert!(
        successes > 20,
        "the requests reach real work, not only refusals: {statuses:?}"
    );
    runtime.block_on(helpers::assert_audit_ok(&engine));
    runtime.block_on(engine.stop());
}
