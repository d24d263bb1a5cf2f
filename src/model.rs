//! The domain nouns every layer shares: ids, discounts, user coupons, orders, payments and the
//! read views of products and coupons. Actor state types wrap them; the HTTP layer converts
//! them into its own wire types (`src/http/types.rs`). The small value types (`Discount`, the
//! statuses) are written the same everywhere and serialize as they are; an order line also
//! goes to the data platform inside `OrderPaid`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Timestamp;

pub type UserId = u64;
pub type ProductId = u64;
pub type OptionId = u64;
pub type CouponId = u64;
pub type OrderId = u64;

/// Points and prices: whole KRW won. Never a float.
pub type Won = u64;

/// 2^53 - 1: the largest integer every JSON client (JavaScript's numbers included) reads
/// exactly. Prices, coupon amounts, stock and ids created by admins stay at or below it.
pub const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// How a coupon reduces an order's total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "UPPERCASE", deny_unknown_fields)]
pub enum Discount {
    /// A fixed amount off, capped at the total.
    Fixed {
        #[schema(minimum = 1)]
        amount: Won,
    },
    /// A percentage off (1..=100), rounded down to the won.
    Percent {
        #[schema(minimum = 1, maximum = 100)]
        percent: u8,
    },
}

impl Discount {
    /// The discount on `total`: never more than `total`.
    pub fn amount_off(self, total: Won) -> Won {
        match self {
            Discount::Fixed { amount } => amount.min(total),
            // u128 so that `total * percent` cannot overflow for any u64 total.
            Discount::Percent { percent } => {
                let off = u128::from(total) * u128::from(percent.min(100)) / 100;
                off as Won
            }
        }
    }

    /// Whether the discount is well formed (a PERCENT of 1..=100).
    pub fn is_valid(self) -> bool {
        match self {
            Discount::Fixed { .. } => true,
            Discount::Percent { percent } => (1..=100).contains(&percent),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CouponStatus {
    Available,
    Used,
    Expired,
}

/// A coupon held by a user.
#[derive(Clone, Debug, PartialEq, Eq)]
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

impl UserCoupon {
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }

    /// The coupon as a reader sees it at `now`: an unused coupon past its expiry shows EXPIRED.
    pub fn view_at(&self, now: Timestamp) -> UserCoupon {
        let mut view = self.clone();
        if view.status == CouponStatus::Available && view.is_expired_at(now) {
            view.status = CouponStatus::Expired;
        }
        view
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Paid,
    Expired,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_id: ProductId,
    pub option_id: OptionId,
    /// The product's name, shared with the product rather than copied into every line.
    pub name: Arc<str>,
    pub quantity: u32,
    pub unit_price: Won,
    pub line_total: Won,
}

#[derive(Clone, Debug, PartialEq, Eq)]
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

/// The reply to a successful payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub total_amount: Won,
    pub discount_amount: Won,
    pub paid_amount: Won,
    /// The user's balance after the payment.
    pub balance: Won,
    pub coupon_id: Option<CouponId>,
    pub paid_at: Timestamp,
}

/// What the data platform receives for every paid order (docs/spec.md §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub items: Vec<OrderItem>,
    pub total_amount: Won,
    pub discount_amount: Won,
    pub paid_amount: Won,
    pub coupon_id: Option<CouponId>,
    pub paid_at: Timestamp,
}

impl OrderPaid {
    /// The record of a PAID order; `None` for an order in any other state.
    pub fn of(order: &Order) -> Option<OrderPaid> {
        Some(OrderPaid {
            order_id: order.order_id,
            user_id: order.user_id,
            items: order.items.clone(),
            total_amount: order.total_amount,
            discount_amount: order.discount_amount?,
            paid_amount: order.paid_amount?,
            coupon_id: order.coupon_id,
            paid_at: order.paid_at?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductOptionView {
    pub id: OptionId,
    pub name: String,
    /// What can be ordered now: on hand minus reserved by pending orders.
    pub stock: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductView {
    pub id: ProductId,
    pub name: String,
    pub category: String,
    pub price: Won,
    pub options: Vec<ProductOptionView>,
    /// Units one user may buy (PENDING and PAID orders together); `None` (null) for no limit.
    pub purchase_limit: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouponView {
    pub id: CouponId,
    pub name: String,
    pub discount: Discount,
    pub total_quantity: u64,
    pub remaining_quantity: u64,
    pub expires_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_discount_is_capped_at_the_total() {
        let discount = Discount::Fixed { amount: 3_000 };
        assert_eq!(discount.amount_off(10_000), 3_000);
        assert_eq!(discount.amount_off(2_500), 2_500);
        assert_eq!(discount.amount_off(0), 0);
    }

    #[test]
    fn percent_discount_rounds_down() {
        let discount = Discount::Percent { percent: 10 };
        assert_eq!(discount.amount_off(10_000), 1_000);
        assert_eq!(discount.amount_off(9_999), 999);
        assert_eq!(discount.amount_off(9), 0);
        assert_eq!(Discount::Percent { percent: 15 }.amount_off(333), 49);
        assert_eq!(Discount::Percent { percent: 100 }.amount_off(777), 777);
        assert_eq!(
            Discount::Percent { percent: 50 }.amount_off(u64::MAX),
            u64::MAX / 2
        );
    }

    #[test]
    fn percent_must_be_between_1_and_100() {
        assert!(!Discount::Percent { percent: 0 }.is_valid());
        assert!(!Discount::Percent { percent: 101 }.is_valid());
        assert!(Discount::Percent { percent: 100 }.is_valid());
    }

    #[test]
    fn discounts_use_the_spec_json_shape() {
        let fixed: Discount = serde_json::from_str(r#"{"type":"FIXED","amount":3000}"#).unwrap();
        assert_eq!(fixed, Discount::Fixed { amount: 3000 });
        let json = serde_json::to_string(&Discount::Percent { percent: 10 }).unwrap();
        assert_eq!(json, r#"{"type":"PERCENT","percent":10}"#);
    }
}
