//! The on-disk model of snapshot bodies (format versions 1 and 2 share `SnapshotV1`; version 3
//! is `SnapshotV3`, which adds purchase limits to products; journal records reuse the order,
//! product and coupon types). These types are written to disk and must keep decoding forever:
//! never change them. A new format gets new types and a conversion from the old ones; only
//! the newest converts to and from the state. They are separate from the actor state types on purpose, so
//! refactoring an actor never breaks an old snapshot; `tests/fixtures/snapshot-v1.bin` proves it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::actors::coupon::CouponState;
use crate::actors::data_platform::DataPlatformState;
use crate::actors::product::{OptionStock, ProductState, Reservation, StockLine};
use crate::actors::sales::SalesState;
use crate::actors::user::UserState;
use crate::clock::Timestamp;
use crate::model::{CouponStatus, Discount, Order, OrderItem, OrderPaid, OrderStatus, UserCoupon};
use crate::state::{EngineState, IdCounters};

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

// ---- engine state -> disk ----

impl SnapshotV3 {
    pub fn from_state(sequence: u64, taken_at: Timestamp, state: &EngineState) -> SnapshotV3 {
        let ids = &state.ids;
        SnapshotV3 {
            sequence,
            taken_at: taken_at.0,
            ids: IdsV1 {
                next_user_id: ids.next_user_id,
                next_product_id: ids.next_product_id,
                next_option_id: ids.next_option_id,
                next_coupon_id: ids.next_coupon_id,
                next_order_id: ids.next_order_id,
            },
            users: state.users.values().map(UserV2::from_state).collect(),
            products: state.products.values().map(ProductV2::from_state).collect(),
            coupons: state.coupons.values().map(CouponV1::from_state).collect(),
            daily_sales: state
                .sales
                .daily
                .iter()
                .map(|(&(day, product), &quantity)| (day, product, quantity))
                .collect(),
            undelivered: state
                .data_platform
                .pending
                .values()
                .map(OrderPaidV1::from_record)
                .collect(),
            delivered: state.data_platform.delivered,
            failed_attempts: state.data_platform.failed_attempts,
            archived_orders: state.archived_orders,
        }
    }

    pub fn into_state(self) -> EngineState {
        let ids = self.ids;
        let mut state = EngineState {
            users: self
                .users
                .into_iter()
                .map(|user| (user.id, user.into_state()))
                .collect(),
            products: self
                .products
                .into_iter()
                .map(|product| (product.id, product.into_state()))
                .collect(),
            coupons: self
                .coupons
                .into_iter()
                .map(|coupon| (coupon.id, coupon.into_state()))
                .collect(),
            sales: SalesState {
                daily: self
                    .daily_sales
                    .into_iter()
                    .map(|(day, product, quantity)| ((day, product), quantity))
                    .collect(),
            },
            data_platform: DataPlatformState {
                pending: self
                    .undelivered
                    .into_iter()
                    .map(|r| (r.order_id, r.into_record()))
                    .collect(),
                delivered: self.delivered,
                failed_attempts: self.failed_attempts,
            },
            archived_orders: self.archived_orders,
            ids: IdCounters {
                next_user_id: ids.next_user_id,
                next_product_id: ids.next_product_id,
                next_option_id: ids.next_option_id,
                next_coupon_id: ids.next_coupon_id,
                next_order_id: ids.next_order_id,
            },
        };
        state.share_product_names();
        state
    }
}

impl DiscountV1 {
    fn from_discount(discount: Discount) -> DiscountV1 {
        match discount {
            Discount::Fixed { amount } => DiscountV1::Fixed(amount),
            Discount::Percent { percent } => DiscountV1::Percent(percent),
        }
    }

    fn into_discount(self) -> Discount {
        match self {
            DiscountV1::Fixed(amount) => Discount::Fixed { amount },
            DiscountV1::Percent(percent) => Discount::Percent { percent },
        }
    }
}

fn millis(stamp: Option<Timestamp>) -> Option<u64> {
    stamp.map(|stamp| stamp.0)
}

fn stamp(millis: Option<u64>) -> Option<Timestamp> {
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

impl UserV2 {
    fn from_state(user: &UserState) -> UserV2 {
        UserV2 {
            id: user.id,
            balance: user.balance,
            initial_balance: user.initial_balance,
            charged: user.charged,
            paid: user.paid,
            coupons: user
                .coupons
                .values()
                .map(UserCouponV1::from_coupon)
                .collect(),
            orders: user.orders.values().map(OrderV1::from_order).collect(),
        }
    }

    fn into_state(self) -> UserState {
        let id = self.id;
        UserState {
            id,
            balance: self.balance,
            initial_balance: self.initial_balance,
            charged: self.charged,
            paid: self.paid,
            coupons: self
                .coupons
                .into_iter()
                .map(|c| (c.coupon_id, c.into_coupon(id)))
                .collect(),
            orders: self
                .orders
                .into_iter()
                .map(|o| (o.order_id, o.into_order(id)))
                .collect(),
        }
    }
}

impl UserCouponV1 {
    fn from_coupon(coupon: &UserCoupon) -> UserCouponV1 {
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

    fn into_coupon(self, user_id: u64) -> UserCoupon {
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
    fn from_item(item: &OrderItem) -> OrderItemV1 {
        OrderItemV1 {
            product_id: item.product_id,
            option_id: item.option_id,
            name: item.name.to_string(),
            quantity: item.quantity,
            unit_price: item.unit_price,
            line_total: item.line_total,
        }
    }

    fn into_item(self) -> OrderItem {
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

/// Reservation lines as written on disk, (option id, quantity), as the product actor keeps them.
pub fn stock_lines(lines: Vec<(u64, u64)>) -> Vec<StockLine> {
    let lines = lines.into_iter();
    lines
        .map(|(option_id, quantity)| StockLine {
            option_id,
            quantity,
        })
        .collect()
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

impl ProductV2 {
    pub fn from_state(product: &ProductState) -> ProductV2 {
        ProductV2 {
            id: product.id,
            name: product.name.to_string(),
            category: product.category.clone(),
            price: product.price,
            options: product
                .options
                .iter()
                .map(|o| OptionV1 {
                    id: o.id,
                    name: o.name.clone(),
                    initial: o.initial,
                    restocked: o.restocked,
                    available: o.available,
                    reserved: o.reserved,
                    sold: o.sold,
                })
                .collect(),
            purchase_limit: product.purchase_limit,
            reservations: product
                .reservations
                .iter()
                .map(|(&order_id, reservation)| ReservationV2 {
                    order_id,
                    user_id: reservation.user_id,
                    lines: reservation
                        .lines
                        .iter()
                        .map(|l| (l.option_id, l.quantity))
                        .collect(),
                })
                .collect(),
            bought: product
                .bought
                .iter()
                .map(|(&user, &units)| (user, units))
                .collect(),
        }
    }

    pub fn into_state(self) -> ProductState {
        ProductState {
            id: self.id,
            name: self.name.into(),
            category: self.category,
            price: self.price,
            options: self
                .options
                .into_iter()
                .map(|o| OptionStock {
                    id: o.id,
                    name: o.name,
                    initial: o.initial,
                    restocked: o.restocked,
                    available: o.available,
                    reserved: o.reserved,
                    sold: o.sold,
                })
                .collect(),
            purchase_limit: self.purchase_limit,
            reservations: self
                .reservations
                .into_iter()
                .map(|reservation| {
                    let lines = stock_lines(reservation.lines);
                    let user_id = reservation.user_id;
                    (reservation.order_id, Reservation { user_id, lines })
                })
                .collect::<BTreeMap<_, _>>(),
            bought: self.bought.into_iter().collect(),
        }
    }
}

impl CouponV1 {
    pub fn from_state(coupon: &CouponState) -> CouponV1 {
        CouponV1 {
            id: coupon.id,
            name: coupon.name.clone(),
            discount: DiscountV1::from_discount(coupon.discount),
            total: coupon.total,
            remaining: coupon.remaining,
            expires_at: millis(coupon.expires_at),
            holders: coupon.holders.iter().copied().collect(),
        }
    }

    pub fn into_state(self) -> CouponState {
        CouponState {
            id: self.id,
            name: self.name,
            discount: self.discount.into_discount(),
            total: self.total,
            remaining: self.remaining,
            expires_at: stamp(self.expires_at),
            holders: self.holders.into_iter().collect::<BTreeSet<_>>(),
        }
    }
}

impl OrderPaidV1 {
    fn from_record(record: &OrderPaid) -> OrderPaidV1 {
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

    fn into_record(self) -> OrderPaid {
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
