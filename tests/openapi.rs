//! `GET /openapi.json`: an OpenAPI 3.1 document with exactly the routes the router serves (the
//! route table, which `tests/metrics.rs` holds to the router), each with its parameters, body
//! and every error status with the codes it can carry.

mod helpers;

use std::collections::BTreeSet;

use commerce_engine::http::route_table::ROUTES;
use helpers::Api;
use serde_json::Value;

async fn document() -> Value {
    let engine = helpers::small_engine().await;
    let reply = Api::new(&engine).get("/openapi.json").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, "application/json");
    engine.stop().await;
    reply.body
}

#[tokio::test]
async fn the_document_describes_exactly_the_routes_of_the_router() {
    let document = document().await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut described = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "head", "put", "patch", "delete"].contains(&method.as_str()) {
                described.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    // HEAD /health is GET's twin: HTTP gives it to every GET, and the document says GET.
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|route| route.method != "HEAD")
        .map(|route| (route.method.to_string(), route.path.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&described).collect();
    let extra: Vec<_> = described.difference(&served).collect();
    assert!(missing.is_empty(), "served but not described: {missing:?}");
    assert!(extra.is_empty(), "described but not served: {extra:?}");
}

#[tokio::test]
async fn every_error_response_names_its_codes() {
    let document = document().await;
    let operation = &document["paths"]["/orders"]["post"];
    let conflict = &operation["responses"]["409"];
    let codes = &conflict["content"]["application/json"]["schema"]["allOf"][1]["properties"]["code"]
        ["enum"];
    assert_eq!(
        codes,
        &serde_json::json!([
            "OUT_OF_STOCK",
            "TOO_MANY_PENDING_ORDERS",
            "PURCHASE_LIMIT_EXCEEDED"
        ])
    );
    let bad = &operation["responses"]["400"]["description"];
    assert_eq!(bad, "INVALID_ORDER, INVALID_REQUEST");
    for status in ["413", "415", "401", "403", "503"] {
        assert!(operation["responses"][status].is_object(), "{status}");
    }
    assert!(operation["requestBody"]["content"]["application/json"].is_object());
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"];
                    assert!(schema["allOf"].is_array(), "{method} {path} {status}");
                }
            }
        }
    }
    let admin = &document["paths"]["/admin/users"]["post"];
    assert_eq!(admin["security"][0]["admin_token"], serde_json::json!([]));
}
