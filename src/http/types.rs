//! Request and response bodies of the HTTP API (docs/spec.md §2): every JSON shape the API
//! reads or sends is a type here, converted from the engine's own types in the handler, so the
//! wire format and the OpenAPI document change only here. Requests reject unknown fields; ids in
//! bodies must be positive. Fields whose bad values have their own error code (`amount`,
//! `quantity`) are read loosely here and judged by the handler.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::clock::Timestamp;
use crate::engine::{NewCoupon, NewProduct, NewProductOption, PopularItem, ProductPage};
use crate::model::{
    self, CouponId, CouponStatus, Discount, OptionId, OrderId, OrderStatus, ProductId, UserId, Won,
};

/// A JSON object read as `T`. serde reads a struct from a JSON array too, field by field;
/// wrapped in `Object`, an array in its place is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = serde_json::Map::deserialize(deserializer)?;
        serde_json::from_value(serde_json::Value::Object(object))
            .map(Object)
            .map_err(serde::de::Error::custom)
    }
}

/// A positive integer id (u64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Id(pub u64);

/// In the API description: an integer of at least 1.
impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .into()
    }
}

impl ToSchema for Id {}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match u64::deserialize(deserializer)? {
            0 => Err(serde::de::Error::custom("ids are positive integers")),
            id => Ok(Id(id)),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeRequest {
    /// Any JSON value: a negative, fractional or string amount is INVALID_AMOUNT, not a
    /// generic malformed request. Valid: 1..=`limits.max_charge`.
    #[schema(value_type = u64, minimum = 1)]
    pub amount: serde_json::Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueCouponRequest {
    pub user_id: Id,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    pub user_id: Id,
    #[schema(value_type = Vec<OrderLineRequest>, min_items = 1)]
    pub items: Vec<Object<OrderLineRequest>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineRequest {
    pub product_id: Id,
    #[serde(default)]
    pub option_id: Option<Id>,
    /// Signed so that 0 and negative quantities are INVALID_ORDER, like any out-of-range one.
    #[schema(minimum = 1)]
    pub quantity: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub user_id: Id,
    #[serde(default)]
    pub coupon_id: Option<Id>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub user_id: Id,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[serde(default)]
    pub user_id: Option<Id>,
    #[serde(default)]
    pub balance: Option<Won>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    #[schema(min_length = 1)]
    pub name: String,
    #[schema(min_length = 1)]
    pub category: String,
    #[schema(maximum = 9_007_199_254_740_991_u64)]
    pub price: Won,
    #[schema(value_type = Vec<CreateOptionRequest>, min_items = 1)]
    pub options: Vec<Object<CreateOptionRequest>>,
    /// Units per user; absent or null: no limit.
    #[serde(default)]
    pub purchase_limit: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOptionRequest {
    #[schema(min_length = 1)]
    pub name: String,
    pub stock: u64,
}

impl From<CreateProductRequest> for NewProduct {
    fn from(request: CreateProductRequest) -> NewProduct {
        NewProduct {
            name: request.name,
            category: request.category,
            price: request.price,
            purchase_limit: request.purchase_limit,
            options: request
                .options
                .into_iter()
                .map(|Object(option)| NewProductOption {
                    name: option.name,
                    stock: option.stock,
                })
                .collect(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    #[schema(minimum = 1)]
    pub quantity: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCouponRequest {
    #[schema(min_length = 1)]
    pub name: String,
    #[schema(value_type = Discount)]
    pub discount: Object<Discount>,
    #[schema(minimum = 1)]
    pub quantity: u64,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

impl From<CreateCouponRequest> for NewCoupon {
    fn from(request: CreateCouponRequest) -> NewCoupon {
        NewCoupon {
            name: request.name,
            discount: request.discount.0,
            quantity: request.quantity,
            expires_at: request.expires_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PointsResponse {
    pub user_id: UserId,
    pub balance: Won,
}

#[derive(Serialize, ToSchema)]
pub struct ProductPageResponse {
    pub items: Vec<Product>,
    pub page: usize,
    pub size: usize,
    pub total: usize,
}

impl From<ProductPage> for ProductPageResponse {
    fn from(page: ProductPage) -> Self {
        ProductPageResponse {
            items: page.items.into_iter().map(Product::from).collect(),
            page: page.page,
            size: page.size,
            total: page.total,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PopularResponse {
    pub days: u64,
    pub limit: usize,
    pub items: Vec<PopularItemResponse>,
}

#[derive(Serialize, ToSchema)]
pub struct PopularItemResponse {
    pub rank: usize,
    pub product_id: u64,
    pub name: String,
    pub sold_quantity: u64,
}

impl From<PopularItem> for PopularItemResponse {
    fn from(item: PopularItem) -> Self {
        PopularItemResponse {
            rank: item.rank,
            product_id: item.product_id,
            name: item.name,
            sold_quantity: item.sold_quantity,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserCouponsResponse {
    pub user_id: UserId,
    pub coupons: Vec<UserCoupon>,
}

#[derive(Serialize, ToSchema)]
pub struct UserOrdersResponse {
    pub user_id: UserId,
    pub orders: Vec<Order>,
    /// The `before` of the next page; null on the last one.
    pub next_before: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    pub status: &'static str,
}

/// `Order` (docs/spec.md §2): `coupon_id`, `discount_amount`, `paid_amount` and `paid_at` are
/// null until the order is paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Order {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub total_amount: Won,
    pub coupon_id: Option<CouponId>,
    pub discount_amount: Option<Won>,
    pub paid_amount: Option<Won>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub paid_at: Option<Timestamp>,
}

/// One line of an `Order`: `name` is the product's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderItem {
    pub product_id: ProductId,
    pub option_id: OptionId,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Won,
    pub line_total: Won,
}

impl From<model::Order> for Order {
    fn from(order: model::Order) -> Order {
        Order {
            order_id: order.order_id,
            user_id: order.user_id,
            status: order.status,
            items: order.items.iter().map(OrderItem::from).collect(),
            total_amount: order.total_amount,
            coupon_id: order.coupon_id,
            discount_amount: order.discount_amount,
            paid_amount: order.paid_amount,
            created_at: order.created_at,
            expires_at: order.expires_at,
            paid_at: order.paid_at,
        }
    }
}

impl From<&model::OrderItem> for OrderItem {
    fn from(item: &model::OrderItem) -> OrderItem {
        OrderItem {
            product_id: item.product_id,
            option_id: item.option_id,
            name: item.name.to_string(),
            quantity: item.quantity,
            unit_price: item.unit_price,
            line_total: item.line_total,
        }
    }
}

/// `Payment` (docs/spec.md §2): `balance` is the buyer's balance after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Payment {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub total_amount: Won,
    pub discount_amount: Won,
    pub paid_amount: Won,
    pub balance: Won,
    pub coupon_id: Option<CouponId>,
    pub paid_at: Timestamp,
}

impl From<model::Payment> for Payment {
    fn from(payment: model::Payment) -> Payment {
        Payment {
            order_id: payment.order_id,
            status: payment.status,
            total_amount: payment.total_amount,
            discount_amount: payment.discount_amount,
            paid_amount: payment.paid_amount,
            balance: payment.balance,
            coupon_id: payment.coupon_id,
            paid_at: payment.paid_at,
        }
    }
}

/// `UserCoupon` (docs/spec.md §2): a coupon held by a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserCoupon {
    pub coupon_id: CouponId,
    pub user_id: UserId,
    pub name: String,
    pub discount: Discount,
    pub status: CouponStatus,
    pub issued_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub order_id: Option<OrderId>,
    pub expires_at: Option<Timestamp>,
}

impl From<model::UserCoupon> for UserCoupon {
    fn from(coupon: model::UserCoupon) -> UserCoupon {
        UserCoupon {
            coupon_id: coupon.coupon_id,
            user_id: coupon.user_id,
            name: coupon.name,
            discount: coupon.discount,
            status: coupon.status,
            issued_at: coupon.issued_at,
            used_at: coupon.used_at,
            order_id: coupon.order_id,
            expires_at: coupon.expires_at,
        }
    }
}

/// `Product` (docs/spec.md §2): each option's `stock` is what can be ordered now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub category: String,
    pub price: Won,
    pub options: Vec<ProductOption>,
    /// Units one user may buy (PENDING and PAID orders together); null for no limit.
    pub purchase_limit: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProductOption {
    pub id: OptionId,
    pub name: String,
    pub stock: u64,
}

impl From<model::ProductView> for Product {
    fn from(product: model::ProductView) -> Product {
        Product {
            id: product.id,
            name: product.name,
            category: product.category,
            price: product.price,
            options: product
                .options
                .into_iter()
                .map(|option| ProductOption {
                    id: option.id,
                    name: option.name,
                    stock: option.stock,
                })
                .collect(),
            purchase_limit: product.purchase_limit,
        }
    }
}

/// `Coupon` (docs/spec.md §2): `expires_at` null means never.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Coupon {
    pub id: CouponId,
    pub name: String,
    pub discount: Discount,
    pub total_quantity: u64,
    pub remaining_quantity: u64,
    pub expires_at: Option<Timestamp>,
}

impl From<model::CouponView> for Coupon {
    fn from(coupon: model::CouponView) -> Coupon {
        Coupon {
            id: coupon.id,
            name: coupon.name,
            discount: coupon.discount,
            total_quantity: coupon.total_quantity,
            remaining_quantity: coupon.remaining_quantity,
            expires_at: coupon.expires_at,
        }
    }
}
