//! What a simulated buyer can do, behind one trait with two implementations: the engine in
//! this process (`Engine`) and a running server over HTTP (`HttpShop`). The buyer logic is
//! written once against `Shop`, so both modes exercise the same behaviour. Failures are the
//! API's error codes (`OUT_OF_STOCK`, ...), identical in both modes.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use commerce_engine::audit::AuditReport;
use commerce_engine::engine::{Engine, OrderLine, ProductQuery};
use commerce_engine::http::types::{Coupon, Product};
use commerce_engine::model::OrderStatus;

/// A result whose error is the API's error code (static in embedded mode: no allocation).
pub type Outcome<T> = Result<T, Cow<'static, str>>;

pub trait Shop: Clone + Send + Sync + 'static {
    fn charge(&self, user_id: u64, amount: u64) -> impl Future<Output = Outcome<u64>> + Send;
    /// One page of products in a category (or all), optionally only those in stock.
    fn browse(
        &self,
        category: Option<String>,
        in_stock: bool,
    ) -> impl Future<Output = Outcome<usize>> + Send;
    fn issue_coupon(
        &self,
        coupon_id: u64,
        user_id: u64,
    ) -> impl Future<Output = Outcome<()>> + Send;
    /// Places an order; replies with its id and total.
    fn place_order(
        &self,
        user_id: u64,
        lines: Vec<OrderLine>,
    ) -> impl Future<Output = Outcome<(u64, u64)>> + Send;
    /// Pays; replies with the amount paid.
    fn pay(
        &self,
        order_id: u64,
        user_id: u64,
        coupon_id: Option<u64>,
    ) -> impl Future<Output = Outcome<u64>> + Send;
    fn cancel(&self, order_id: u64, user_id: u64) -> impl Future<Output = Outcome<()>> + Send;
    fn balance(&self, user_id: u64) -> impl Future<Output = Outcome<u64>> + Send;
    /// The status of `order_id`, as its owner `user_id` sees it.
    fn order_status(
        &self,
        order_id: u64,
        user_id: u64,
    ) -> impl Future<Output = Outcome<OrderStatus>> + Send;
    /// Every product with its current stock.
    fn catalog(&self) -> impl Future<Output = Outcome<Vec<Product>>> + Send;
    fn coupon(&self, coupon_id: u64) -> impl Future<Output = Outcome<Coupon>> + Send;
    /// The engine's own audit, if this shop can ask for it.
    fn engine_audit(&self) -> impl Future<Output = Option<Outcome<AuditReport>>> + Send;
}

fn code(error: commerce_engine::EngineError) -> Cow<'static, str> {
    Cow::Borrowed(error.code().as_str())
}

impl Shop for Engine {
    async fn charge(&self, user_id: u64, amount: u64) -> Outcome<u64> {
        Engine::charge(self, user_id, amount).await.map_err(code)
    }

    async fn browse(&self, category: Option<String>, in_stock: bool) -> Outcome<usize> {
        let query = ProductQuery {
            category,
            in_stock: in_stock.then_some(true),
            ..ProductQuery::default()
        };
        Ok(self.products(&query).items.len())
    }

    async fn issue_coupon(&self, coupon_id: u64, user_id: u64) -> Outcome<()> {
        Engine::issue_coupon(self, coupon_id, user_id)
            .await
            .map(drop)
            .map_err(code)
    }

    async fn place_order(&self, user_id: u64, lines: Vec<OrderLine>) -> Outcome<(u64, u64)> {
        let order = Engine::place_order(self, user_id, lines)
            .await
            .map_err(code)?;
        Ok((order.order_id, order.total_amount))
    }

    async fn pay(&self, order_id: u64, user_id: u64, coupon_id: Option<u64>) -> Outcome<u64> {
        Engine::pay(self, order_id, user_id, coupon_id)
            .await
            .map(|p| p.paid_amount)
            .map_err(code)
    }

    async fn cancel(&self, order_id: u64, user_id: u64) -> Outcome<()> {
        Engine::cancel(self, order_id, user_id)
            .await
            .map(drop)
            .map_err(code)
    }

    async fn balance(&self, user_id: u64) -> Outcome<u64> {
        Engine::balance(self, user_id).await.map_err(code)
    }

    async fn order_status(&self, order_id: u64, _user_id: u64) -> Outcome<OrderStatus> {
        Engine::order(self, order_id)
            .await
            .map(|order| order.status)
            .map_err(code)
    }

    async fn catalog(&self) -> Outcome<Vec<Product>> {
        let query = ProductQuery {
            size: usize::MAX,
            ..ProductQuery::default()
        };
        let items = self.products(&query).items;
        Ok(items.into_iter().map(Product::from).collect())
    }

    async fn coupon(&self, coupon_id: u64) -> Outcome<Coupon> {
        let coupon = Engine::coupon(self, coupon_id).await;
        coupon.map(Coupon::from).map_err(code)
    }

    async fn engine_audit(&self) -> Option<Outcome<AuditReport>> {
        Some(self.audit().await.map_err(code))
    }
}

/// A running server, spoken to over HTTP.
#[derive(Clone)]
pub struct HttpShop {
    base: String,
    client: reqwest::Client,
    admin_token: Option<String>,
    /// Signs an HS256 token for each buyer when the server runs `auth.mode = "jwt"`.
    jwt: Option<Arc<jsonwebtoken::EncodingKey>>,
}

/// How long the simulator's tokens are valid.
const TOKEN_LIFETIME_SECS: u64 = 3_600;

impl HttpShop {
    /// A shop at `base`; `jwt_secret` makes every buyer request carry a token for its user.
    pub fn new(base: &str, admin_token: Option<String>, jwt_secret: Option<&str>) -> HttpShop {
        HttpShop {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            admin_token,
            jwt: jwt_secret
                .map(|secret| Arc::new(jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()))),
        }
    }

    /// `request`, acting as `user_id`: with its bearer token in jwt mode.
    fn as_user(&self, request: reqwest::RequestBuilder, user_id: u64) -> reqwest::RequestBuilder {
        let Some(key) = &self.jwt else {
            return request;
        };
        let claims = json!({
            "sub": user_id.to_string(),
            "exp": jsonwebtoken::get_current_timestamp() + TOKEN_LIFETIME_SECS,
        });
        match jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, key) {
            Ok(token) => request.bearer_auth(token),
            // HS256 over a JSON object cannot fail; unauthenticated, the server says 401.
            Err(_) => request,
        }
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Outcome<T> {
        let response = request.send().await.map_err(|_| "HTTP_ERROR")?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|_| "UNREADABLE_BODY")?;
        if !status.is_success() {
            return Err(body["code"]
                .as_str()
                .unwrap_or("UNKNOWN")
                .to_string()
                .into());
        }
        serde_json::from_value(body).map_err(|_| "UNEXPECTED_BODY".into())
    }

    /// A public read.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Outcome<T> {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    /// A read of `user_id`'s own data.
    async fn get_as<T: DeserializeOwned>(&self, user_id: u64, path: &str) -> Outcome<T> {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(self.as_user(request, user_id)).await
    }

    /// A change made as `user_id`.
    async fn post_as<T: DeserializeOwned>(
        &self,
        user_id: u64,
        path: &str,
        body: Value,
    ) -> Outcome<T> {
        let request = self.client.post(format!("{}{path}", self.base)).json(&body);
        self.send(self.as_user(request, user_id)).await
    }
}

impl Shop for HttpShop {
    async fn charge(&self, user_id: u64, amount: u64) -> Outcome<u64> {
        let reply: Value = self
            .post_as(
                user_id,
                &format!("/users/{user_id}/points/charge"),
                json!({ "amount": amount }),
            )
            .await?;
        Ok(reply["balance"].as_u64().unwrap_or(0))
    }

    async fn browse(&self, category: Option<String>, in_stock: bool) -> Outcome<usize> {
        let mut query = vec![("in_stock", in_stock.to_string())];
        query.extend(category.map(|category| ("category", category)));
        let query = serde_urlencoded::to_string(query).unwrap_or_default();
        let page: Value = self.get(&format!("/products?{query}")).await?;
        Ok(page["items"].as_array().map_or(0, Vec::len))
    }

    async fn issue_coupon(&self, coupon_id: u64, user_id: u64) -> Outcome<()> {
        self.post_as::<Value>(
            user_id,
            &format!("/coupons/{coupon_id}/issue"),
            json!({ "user_id": user_id }),
        )
        .await
        .map(drop)
    }

    async fn place_order(&self, user_id: u64, lines: Vec<OrderLine>) -> Outcome<(u64, u64)> {
        let items: Vec<Value> = lines
            .iter()
            .map(|l| json!({"product_id": l.product_id, "option_id": l.option_id, "quantity": l.quantity}))
            .collect();
        let order: Value = self
            .post_as(
                user_id,
                "/orders",
                json!({ "user_id": user_id, "items": items }),
            )
            .await?;
        Ok((
            order["order_id"].as_u64().unwrap_or(0),
            order["total_amount"].as_u64().unwrap_or(0),
        ))
    }

    async fn pay(&self, order_id: u64, user_id: u64, coupon_id: Option<u64>) -> Outcome<u64> {
        let body = json!({ "user_id": user_id, "coupon_id": coupon_id });
        let payment: Value = self
            .post_as(user_id, &format!("/orders/{order_id}/payment"), body)
            .await?;
        Ok(payment["paid_amount"].as_u64().unwrap_or(0))
    }

    async fn cancel(&self, order_id: u64, user_id: u64) -> Outcome<()> {
        self.post_as::<Value>(
            user_id,
            &format!("/orders/{order_id}/cancel"),
            json!({ "user_id": user_id }),
        )
        .await
        .map(drop)
    }

    async fn balance(&self, user_id: u64) -> Outcome<u64> {
        let reply: Value = self
            .get_as(user_id, &format!("/users/{user_id}/points"))
            .await?;
        reply["balance"].as_u64().ok_or("UNEXPECTED_BODY".into())
    }

    async fn order_status(&self, order_id: u64, user_id: u64) -> Outcome<OrderStatus> {
        let order: Value = self.get_as(user_id, &format!("/orders/{order_id}")).await?;
        serde_json::from_value(order["status"].clone()).map_err(|_| "UNEXPECTED_BODY".into())
    }

    async fn catalog(&self) -> Outcome<Vec<Product>> {
        let mut products = Vec::new();
        for page in 1.. {
            let reply: Value = self.get(&format!("/products?size=100&page={page}")).await?;
            let items: Vec<Product> =
                serde_json::from_value(reply["items"].clone()).map_err(|_| "UNEXPECTED_BODY")?;
            let done = items.len() < 100;
            products.extend(items);
            if done {
                return Ok(products);
            }
        }
        unreachable!("the loop returns on the last page")
    }

    async fn coupon(&self, coupon_id: u64) -> Outcome<Coupon> {
        self.get(&format!("/coupons/{coupon_id}")).await
    }

    async fn engine_audit(&self) -> Option<Outcome<AuditReport>> {
        let token = self.admin_token.as_ref()?;
        let request = self
            .client
            .get(format!("{}/admin/audit", self.base))
            .bearer_auth(token);
        let report: Outcome<Value> = self.send(request).await;
        Some(report.and_then(|report| audit_from_json(&report)))
    }
}

fn audit_from_json(report: &Value) -> Outcome<AuditReport> {
    let checks = report["checks"]
        .as_array()
        .ok_or(Cow::Borrowed("UNEXPECTED_BODY"))?;
    let checks = checks
        .iter()
        .map(|check| commerce_engine::audit::Check {
            name: known_check_name(check["name"].as_str().unwrap_or("?")),
            ok: check["ok"].as_bool().unwrap_or(false),
            detail: check["detail"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    Ok(AuditReport {
        ok: report["ok"].as_bool().unwrap_or(false),
        checks,
    })
}

/// The engine's check names are a handful of static strings; map the server's copies onto them.
fn known_check_name(name: &str) -> &'static str {
    const KNOWN: [&str; 6] = [
        "stock_conservation",
        "coupon_quantity",
        "coupon_use",
        "money",
        "order_states",
        "popular_stats",
    ];
    KNOWN
        .iter()
        .find(|known| **known == name)
        .copied()
        .unwrap_or("unknown_check")
}
