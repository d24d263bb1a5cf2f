//! The on-disk model of snapshot bodies (format versions 1 and 2 share `SnapshotV1`; version 3
//! is `SnapshotV3`, which adds purchase limits to products; journal records reuse the order,
//! product and coupon types). These types are written to disk and must keep decoding forever:
//! never change them. A new format gets new types and a conversion from the old ones; only
//! the newest converts to and from the state. They are separate from the actor state types on purpose, so
//! refactoring an actor never breaks an old snapshot; `tests/fixtures/snapshot-v1.bin` proves it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::model::{CouponStatus, Discount, Order, OrderItem, OrderPaid, OrderStatus, UserCoupon};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotV1 {
    pub sequence: u64,
    /// Unix milliseconds when the state was read.
    pub taken_at: u64,
    pub ids: IdsV1,
    pub users: Vec<UserV1>,
    pub products: Vec<ProductV1>,
    pub coupons: Vec<CouponV1>,
    /// (UTC day, product id, quantity sold).
    pub daily_sales: Vec<(u64, u64, u64)>,
    pub undelivered: Vec<OrderPaidV1>,
    pub delivered: u64,
    pub failed_attempts: u64,
}

/// Format version 3: version 1 with `UserV2` (running totals) and `ProductV2` (purchase
/// limits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotV3 {
    pub sequence: u64,
    /// Unix milliseconds when the state was read.
    pub taken_at: u64,
    pub ids: IdsV1,
    pub users: Vec<UserV2>,
    pub products: Vec<ProductV2>,
    pub coupons: Vec<CouponV1>,
    /// (UTC day, product id, quantity sold).
    pub daily_sales: Vec<(u64, u64, u64)>,
    pub undelivered: Vec<OrderPaidV1>,
    pub delivered: u64,
    pub failed_attempts: u64,
    /// How many ended orders have left memory for the archive.
    pub archived_orders: u64,
}

/// What the entity store (`src/store.rs`) keeps beside its users, products and coupons: the
/// last journal record its state includes, and the rest of the state as a snapshot body
/// whose entity lists are empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreMetaV1 {
    pub position: u64,
    pub rest: SnapshotV3,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsV1 {
    pub next_user_id: u64,
    pub next_product_id: u64,
    pub next_option_id: u64,
    pub next_coupon_id: u64,
    pub next_order_id: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserV1 {
    pub id: u64,
    pub balance: u64,
    pub initial_balance: u64,
    pub charged: u64,
    pub coupons: Vec<UserCouponV1>,
    pub orders: Vec<OrderV1>,
}

/// A user with the running total of what its PAID orders paid, which stays right when its
/// orders are not all in the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserV2 {
    pub id: u64,
    pub balance: u64,
    pub initial_balance: u64,
    pub charged: u64,
    pub paid: u64,
    pub coupons: Vec<UserCouponV1>,
    pub orders: Vec<OrderV1>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiscountV1 {
    Fixed(u64),
    Percent(u8),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCouponV1 {
    pub coupon_id: u64,
    pub name: String,
    pub discount: DiscountV1,
    /// USED; otherwise AVAILABLE (EXPIRED is derived from `expires_at` when read).
    pub used: bool,
    pub issued_at: u64,
    pub used_at: Option<u64>,
    pub order_id: Option<u64>,
    pub expires_at: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatusV1 {
    Pending,
    Paid,
    Expired,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItemV1 {
    pub product_id: u64,
    pub option_id: u64,
    pub name: String,
    pub quantity: u32,
    pub unit_price: u64,
    pub line_total: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderV1 {
    pub order_id: u64,
    pub status: OrderStatusV1,
    pub items: Vec<OrderItemV1>,
    pub total_amount: u64,
    pub coupon_id: Option<u64>,
    pub discount_amount: Option<u64>,
    pub paid_amount: Option<u64>,
    pub created_at: u64,
    pub expires_at: u64,
    pub paid_at: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductV1 {
    pub id: u64,
    pub name: String,
    pub category: String,
    pub price: u64,
    pub options: Vec<OptionV1>,
    /// (order id, [(option id, quantity)]) for every PENDING order holding stock here.
    pub reservations: Vec<(u64, Vec<(u64, u64)>)>,
}

/// A product with its purchase limit and who holds how much of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductV2 {
    pub id: u64,
    pub name: String,
    pub category: String,
    pub price: u64,
    pub options: Vec<OptionV1>,
    /// Units one user may hold in PENDING and PAID orders; `None`: no limit.
    pub purchase_limit: Option<u64>,
    /// Every PENDING order holding stock here.
    pub reservations: Vec<ReservationV2>,
    /// (user id, units held in PENDING and PAID orders), under a purchase limit.
    pub bought: Vec<(u64, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationV2 {
    pub order_id: u64,
    pub user_id: u64,
    /// (option id, quantity).
    pub lines: Vec<(u64, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionV1 {
    pub id: u64,
    pub name: String,
    pub initial: u64,
    pub restocked: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponV1 {
    pub id: u64,
    pub name: String,
    pub discount: DiscountV1,
    pub total: u64,
    pub remaining: u64,
    pub expires_at: Option<u64>,
    pub holders: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaidV1 {
    pub order_id: u64,
    pub user_id: u64,
    pub items: Vec<OrderItemV1>,
    pub total_amount: u64,
    pub discount_amount: u64,
    pub paid_amount: u64,
    pub coupon_id: Option<u64>,
    pub paid_at: u64,
}

impl DiscountV1 {
    pub fn from_discount(discount: Discount) -> DiscountV1 {
        match discount {
            Discount::Fixed { amount } => DiscountV1::Fixed(amount),
            Discount::Percent { percent } => DiscountV1::Percent(percent),
        }
    }

    pub fn into_discount(self) -> Discount {
        match self {
            DiscountV1::Fixed(amount) => Discount::Fixed { amount },
            DiscountV1::Percent(percent) => Discount::Percent { percent },
        }
    }
}

pub fn millis(stamp: Option<Timestamp>) -> Option<u64> {
    stamp.map(|stamp| stamp.0)
}

pub fn stamp(millis: Option<u64>) -> Option<Timestamp> {
    millis.map(Timestamp)
}

impl From<UserV1> for UserV2 {
    /// Version 1 held every order, so the total is what its PAID orders paid.
    fn from(user: UserV1) -> UserV2 {
        let paid = user
            .orders
            .iter()
            .filter(|order| order.status == OrderStatusV1::Paid)
            .filter_map(|order| order.paid_amount)
            .fold(0u64, u64::saturating_add);
        UserV2 {
            id: user.id,
            balance: user.balance,
            initial_balance: user.initial_balance,
            charged: user.charged,
            paid,
            coupons: user.coupons,
            orders: user.orders,
        }
    }
}

impl UserCouponV1 {
    pub fn from_coupon(coupon: &UserCoupon) -> UserCouponV1 {
        UserCouponV1 {
            coupon_id: coupon.coupon_id,
            name: coupon.name.clone(),
            discount: DiscountV1::from_discount(coupon.discount),
            // EXPIRED is derived at read time from `expires_at`; only USED is stored.
            used: coupon.status == CouponStatus::Used,
            issued_at: coupon.issued_at.0,
            used_at: millis(coupon.used_at),
            order_id: coupon.order_id,
            expires_at: millis(coupon.expires_at),
        }
    }

    pub fn into_coupon(self, user_id: u64) -> UserCoupon {
        UserCoupon {
            coupon_id: self.coupon_id,
            user_id,
            name: self.name,
            discount: self.discount.into_discount(),
            status: if self.used {
                CouponStatus::Used
            } else {
                CouponStatus::Available
            },
            issued_at: Timestamp(self.issued_at),
            used_at: stamp(self.used_at),
            order_id: self.order_id,
            expires_at: stamp(self.expires_at),
        }
    }
}

impl OrderItemV1 {
    pub fn from_item(item: &OrderItem) -> OrderItemV1 {
        OrderItemV1 {
            product_id: item.product_id,
            option_id: item.option_id,
            name: item.name.to_string(),
            quantity: item.quantity,
            unit_price: item.unit_price,
            line_total: item.line_total,
        }
    }

    pub fn into_item(self) -> OrderItem {
        OrderItem {
            product_id: self.product_id,
            option_id: self.option_id,
            name: self.name.into(),
            quantity: self.quantity,
            unit_price: self.unit_price,
            line_total: self.line_total,
        }
    }
}

impl OrderV1 {
    pub fn from_order(order: &Order) -> OrderV1 {
        OrderV1 {
            order_id: order.order_id,
            status: match order.status {
                OrderStatus::Pending => OrderStatusV1::Pending,
                OrderStatus::Paid => OrderStatusV1::Paid,
                OrderStatus::Expired => OrderStatusV1::Expired,
                OrderStatus::Cancelled => OrderStatusV1::Cancelled,
            },
            items: order.items.iter().map(OrderItemV1::from_item).collect(),
            total_amount: order.total_amount,
            coupon_id: order.coupon_id,
            discount_amount: order.discount_amount,
            paid_amount: order.paid_amount,
            created_at: order.created_at.0,
            expires_at: order.expires_at.0,
            paid_at: millis(order.paid_at),
        }
    }

    pub fn into_order(self, user_id: u64) -> Order {
        Order {
            order_id: self.order_id,
            user_id,
            status: match self.status {
                OrderStatusV1::Pending => OrderStatus::Pending,
                OrderStatusV1::Paid => OrderStatus::Paid,
                OrderStatusV1::Expired => OrderStatus::Expired,
                OrderStatusV1::Cancelled => OrderStatus::Cancelled,
            },
            items: self.items.into_iter().map(OrderItemV1::into_item).collect(),
            total_amount: self.total_amount,
            coupon_id: self.coupon_id,
            discount_amount: self.discount_amount,
            paid_amount: self.paid_amount,
            created_at: Timestamp(self.created_at),
            expires_at: Timestamp(self.expires_at),
            paid_at: stamp(self.paid_at),
        }
    }
}

impl From<ProductV1> for ProductV2 {
    /// Before purchase limits: no limit, and reservations of an unknown buyer (user 0; a
    /// snapshot knows better, see `SnapshotV3::from`).
    fn from(product: ProductV1) -> ProductV2 {
        ProductV2 {
            id: product.id,
            name: product.name,
            category: product.category,
            price: product.price,
            options: product.options,
            purchase_limit: None,
            reservations: product
                .reservations
                .into_iter()
                .map(|(order_id, lines)| ReservationV2 {
                    order_id,
                    user_id: 0,
                    lines,
                })
                .collect(),
            bought: Vec::new(),
        }
    }
}

impl From<SnapshotV1> for SnapshotV3 {
    /// Each reservation's buyer is the owner of its order.
    fn from(snapshot: SnapshotV1) -> SnapshotV3 {
        let buyers: BTreeMap<u64, u64> = snapshot
            .users
            .iter()
            .flat_map(|user| user.orders.iter().map(|order| (order.order_id, user.id)))
            .collect();
        let mut products: Vec<ProductV2> =
            snapshot.products.into_iter().map(ProductV2::from).collect();
        for reservation in products.iter_mut().flat_map(|p| &mut p.reservations) {
            reservation.user_id = buyers.get(&reservation.order_id).copied().unwrap_or(0);
        }
        SnapshotV3 {
            sequence: snapshot.sequence,
            taken_at: snapshot.taken_at,
            ids: snapshot.ids,
            users: snapshot.users.into_iter().map(UserV2::from).collect(),
            products,
            coupons: snapshot.coupons,
            daily_sales: snapshot.daily_sales,
            undelivered: snapshot.undelivered,
            delivered: snapshot.delivered,
            failed_attempts: snapshot.failed_attempts,
            archived_orders: 0,
        }
    }
}

impl OrderPaidV1 {
    pub fn from_record(record: &OrderPaid) -> OrderPaidV1 {
        OrderPaidV1 {
            order_id: record.order_id,
            user_id: record.user_id,
            items: record.items.iter().map(OrderItemV1::from_item).collect(),
            total_amount: record.total_amount,
            discount_amount: record.discount_amount,
            paid_amount: record.paid_amount,
            coupon_id: record.coupon_id,
            paid_at: record.paid_at.0,
        }
    }

    pub fn into_record(self) -> OrderPaid {
        OrderPaid {
            order_id: self.order_id,
            user_id: self.user_id,
            items: self.items.into_iter().map(OrderItemV1::into_item).collect(),
            total_amount: self.total_amount,
            discount_amount: self.discount_amount,
            paid_amount: self.paid_amount,
            coupon_id: self.coupon_id,
            paid_at: Timestamp(self.paid_at),
        }
    }
}
