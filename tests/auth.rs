//! `auth.mode = "jwt"` (SPEC 2, Authentication of buyers) through the real routes: who may act
//! as whom, and every way a token can be wrong. Tokens are minted here with `jsonwebtoken`;
//! the key pairs in `tests/fixtures/jwt-*.pem` are for these tests only.

mod helpers;

use std::time::Duration;

use commerce_engine::config::{AuthMode, AuthSettings};
use commerce_engine::http::{BuyerAuth, RouteOptions};
use helpers::Api;
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use serde_json::{Value, json};

const SECRET: &str = "a-test-secret-of-reasonable-length";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn hs256_settings() -> AuthSettings {
    AuthSettings {
        mode: AuthMode::Jwt,
        jwt_secret: SECRET.into(),
        ..AuthSettings::default()
    }
}

async fn api_with(settings: AuthSettings) -> Api {
    let engine = helpers::small_engine().await;
    let options = RouteOptions {
        body_limit_bytes: 16_384,
        admin_token: helpers::ADMIN_TOKEN.into(),
        buyers: BuyerAuth::from_settings(&settings).unwrap(),
        metrics: true,
    };
    Api::with_options(&engine, options)
}

fn now() -> i64 {
    get_current_timestamp() as i64
}

/// Claims for `sub`, valid for an hour.
fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now() + 3600})
}

fn sign(claims: &Value, algorithm: Algorithm, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).unwrap()
}

fn hs256(claims: &Value) -> String {
    sign(
        claims,
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

/// A token's two JSON parts written by hand, with no signature: what `alg: none` looks like.
fn unsigned(header: &Value, claims: &Value) -> String {
    use base64::Engine;
    let encode = |value: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string().as_bytes())
    };
    format!("{}.{}.", encode(header), encode(claims))
}

async fn assert_unauthorized(api: &Api, token: &str, why: &str) {
    let reply = api.authorized(token).get("/users/1/points").await;
    assert_eq!(reply.status, 401, "{why}: {:?}", reply.body);
    assert_eq!(reply.code(), "UNAUTHORIZED", "{why}");
    assert_eq!(reply.headers["www-authenticate"], "Bearer", "{why}");
}

#[tokio::test]
async fn a_valid_token_acts_as_its_user_and_no_one_else() {
    let api = api_with(hs256_settings()).await;
    let user_1 = api.authorized(&hs256(&claims("1")));

    let reply = user_1.get("/users/1/points").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let reply = user_1
        .post("/users/1/points/charge", json!({"amount": 500}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);

    for path in ["/users/2/points", "/users/2/coupons", "/users/2/orders"] {
        let reply = user_1.get(path).await;
        assert_eq!(reply.status, 403, "{path}: {:?}", reply.body);
        assert_eq!(reply.code(), "FORBIDDEN");
    }
    let acting_as_2 = [
        ("/users/2/points/charge", json!({"amount": 500})),
        ("/coupons/1/issue", json!({"user_id": 2})),
        (
            "/orders",
            json!({"user_id": 2, "items": [{"product_id": 2, "option_id": 21, "quantity": 1}]}),
        ),
    ];
    for (path, body) in acting_as_2 {
        let reply = user_1.post(path, body).await;
        assert_eq!(reply.status, 403, "{path}: {:?}", reply.body);
    }
    assert_eq!(api.get("/users/2/points").await.status, 401);
    // Nothing above changed user 2.
    let user_2 = api.authorized(&hs256(&claims("2")));
    assert_eq!(user_2.get("/users/2/points").await.body["balance"], 100_000);
    assert_eq!(
        user_2.get("/users/2/coupons").await.body["coupons"],
        json!([])
    );
}

#[tokio::test]
async fn another_users_order_is_not_found_and_cannot_be_paid_or_cancelled() {
    let api = api_with(hs256_settings()).await;
    let owner = api.authorized(&hs256(&claims("1")));
    let stranger = api.authorized(&hs256(&claims("2")));
    let order = owner
        .post(
            "/orders",
            json!({"user_id": 1, "items": [{"product_id": 2, "option_id": 21, "quantity": 1}]}),
        )
        .await;
    assert_eq!(order.status, 201, "{:?}", order.body);
    let id = order.body["order_id"].as_u64().unwrap();

    let seen = stranger.get(&format!("/orders/{id}")).await;
    assert_eq!(seen.status, 404);
    assert_eq!(seen.code(), "ORDER_NOT_FOUND");
    // Claiming to be the owner in the body is refused; as themselves, the order is not theirs.
    let pay = stranger
        .post(&format!("/orders/{id}/payment"), json!({"user_id": 1}))
        .await;
    assert_eq!(pay.status, 403);
    let pay = stranger
        .post(&format!("/orders/{id}/payment"), json!({"user_id": 2}))
        .await;
    assert_eq!(pay.status, 404);
    let cancel = stranger
        .post(&format!("/orders/{id}/cancel"), json!({"user_id": 1}))
        .await;
    assert_eq!(cancel.status, 403);

    let seen = owner.get(&format!("/orders/{id}")).await;
    assert_eq!(seen.body["status"], "PENDING");
    let paid = owner
        .post(&format!("/orders/{id}/payment"), json!({"user_id": 1}))
        .await;
    assert_eq!(paid.status, 200, "{:?}", paid.body);
}

#[tokio::test]
async fn catalog_coupon_and_health_reads_stay_public() {
    let api = api_with(hs256_settings()).await;
    for path in [
        "/health",
        "/products",
        "/products/1",
        "/products/popular",
        "/coupons/1",
    ] {
        let reply = api.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn missing_and_malformed_tokens_are_401() {
    let api = api_with(hs256_settings()).await;
    let reply = api.get("/users/1/points").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
    assert_unauthorized(&api, "not-a-jwt", "garbage").await;
    assert_unauthorized(&api, "", "empty").await;
    let basic = api
        .send_with(
            "GET",
            "/users/1/points",
            None,
            &[("authorization", "Basic dXNlcjpwYXNz")],
        )
        .await;
    assert_eq!(basic.status, 401);
    // The scheme is case-insensitive.
    let lower = format!("bearer {}", hs256(&claims("1")));
    let reply = api
        .send_with("GET", "/users/1/points", None, &[("authorization", &lower)])
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_401_outside_the_leeway() {
    let api = api_with(hs256_settings()).await;
    let expired = json!({"sub": "1", "exp": now() - 120});
    assert_unauthorized(&api, &hs256(&expired), "expired").await;
    let early = json!({"sub": "1", "exp": now() + 3600, "nbf": now() + 120});
    assert_unauthorized(&api, &hs256(&early), "not yet valid").await;
    let no_exp = json!({"sub": "1"});
    assert_unauthorized(&api, &hs256(&no_exp), "no exp").await;

    // Within the 30-s leeway both pass.
    let just_expired = json!({"sub": "1", "exp": now() - 10});
    let just_early = json!({"sub": "1", "exp": now() + 3600, "nbf": now() + 10});
    for token in [hs256(&just_expired), hs256(&just_early)] {
        assert_eq!(
            api.authorized(&token).get("/users/1/points").await.status,
            200
        );
    }
}

#[tokio::test]
async fn wrong_signatures_and_algorithms_are_401() {
    let api = api_with(hs256_settings()).await;
    let other_secret = sign(
        &claims("1"),
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret"),
    );
    assert_unauthorized(&api, &other_secret, "wrong secret").await;
    let hs384 = sign(
        &claims("1"),
        Algorithm::HS384,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    );
    assert_unauthorized(&api, &hs384, "HS384 with the right secret").await;
    let none = unsigned(&json!({"alg": "none", "typ": "JWT"}), &claims("1"));
    assert_unauthorized(&api, &none, "alg none").await;
    let none_upper = unsigned(&json!({"alg": "NONE", "typ": "JWT"}), &claims("1"));
    assert_unauthorized(&api, &none_upper, "alg NONE").await;
    let ed = EncodingKey::from_ed_pem(&fixture("jwt-ed25519-private.pem")).unwrap();
    let eddsa = sign(&claims("1"), Algorithm::EdDSA, &ed);
    assert_unauthorized(&api, &eddsa, "EdDSA to an HS256 server").await;
    // A valid token with its payload swapped.
    let genuine = hs256(&claims("1"));
    let other = hs256(&claims("2"));
    let mut parts: Vec<&str> = genuine.split('.').collect();
    parts[1] = other.split('.').nth(1).unwrap();
    assert_unauthorized(&api, &parts.join("."), "payload swapped").await;
}

#[tokio::test]
async fn a_sub_that_is_no_user_id_is_401() {
    let api = api_with(hs256_settings()).await;
    let no_sub = json!({"exp": now() + 3600});
    assert_unauthorized(&api, &hs256(&no_sub), "no sub").await;
    for sub in [
        "alice",
        "",
        "0",
        "01",
        "+1",
        "-1",
        "1.0",
        "99999999999999999999",
    ] {
        assert_unauthorized(&api, &hs256(&claims(sub)), sub).await;
    }
    let numeric = json!({"sub": 1, "exp": now() + 3600});
    assert_unauthorized(&api, &hs256(&numeric), "sub as a JSON number").await;
}

#[tokio::test]
async fn issuer_and_audience_are_required_when_configured() {
    let settings = AuthSettings {
        issuer: "https://auth.example".into(),
        audience: "shop".into(),
        ..hs256_settings()
    };
    let api = api_with(settings).await;
    let exp = now() + 3600;
    let good = json!({"sub": "1", "exp": exp, "iss": "https://auth.example", "aud": "shop"});
    assert_eq!(
        api.authorized(&hs256(&good))
            .get("/users/1/points")
            .await
            .status,
        200
    );
    let refused = [
        json!({"sub": "1", "exp": exp, "aud": "shop"}),
        json!({"sub": "1", "exp": exp, "iss": "https://auth.example"}),
        json!({"sub": "1", "exp": exp, "iss": "https://evil.example", "aud": "shop"}),
        json!({"sub": "1", "exp": exp, "iss": "https://auth.example", "aud": "other"}),
    ];
    for claims in refused {
        assert_unauthorized(&api, &hs256(&claims), &claims.to_string()).await;
    }
}

#[tokio::test]
async fn public_keys_verify_eddsa_and_rs256_tokens() {
    let cases = [
        ("jwt-ed25519", Algorithm::EdDSA),
        ("jwt-rsa", Algorithm::RS256),
    ];
    for (name, algorithm) in cases {
        let settings = AuthSettings {
            mode: AuthMode::Jwt,
            jwt_public_key_path: format!("{FIXTURES}/{name}-public.pem"),
            ..AuthSettings::default()
        };
        let api = api_with(settings).await;
        let private = fixture(&format!("{name}-private.pem"));
        let key = match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&private).unwrap(),
            _ => EncodingKey::from_rsa_pem(&private).unwrap(),
        };
        let token = sign(&claims("3"), algorithm, &key);
        let reply = api.authorized(&token).get("/users/3/points").await;
        assert_eq!(reply.status, 200, "{name}: {:?}", reply.body);
        // The classic confusion: an HS256 token keyed with the public key's own bytes.
        let public = fixture(&format!("{name}-public.pem"));
        let confused = sign(
            &claims("3"),
            Algorithm::HS256,
            &EncodingKey::from_secret(&public),
        );
        assert_unauthorized(&api, &confused, name).await;
    }
}

#[test]
fn jwt_mode_needs_exactly_one_readable_key() {
    let neither = AuthSettings {
        mode: AuthMode::Jwt,
        ..AuthSettings::default()
    };
    let both = AuthSettings {
        jwt_public_key_path: format!("{FIXTURES}/jwt-rsa-public.pem"),
        ..hs256_settings()
    };
    let missing = AuthSettings {
        mode: AuthMode::Jwt,
        jwt_public_key_path: format!("{FIXTURES}/no-such-key.pem"),
        ..AuthSettings::default()
    };
    let not_a_key = AuthSettings {
        mode: AuthMode::Jwt,
        jwt_public_key_path: format!("{FIXTURES}/snapshot-v1.bin"),
        ..AuthSettings::default()
    };
    for settings in [neither, both, missing, not_a_key] {
        let error = BuyerAuth::from_settings(&settings).unwrap_err();
        assert!(error.contains("auth."), "{error}");
    }
    let leeway = AuthSettings {
        leeway: Duration::from_secs(5),
        ..hs256_settings()
    };
    assert!(BuyerAuth::from_settings(&leeway).is_ok());
}
