//! How the domain's states are written in the wire formats (`src/wire/snapshot.rs`) and read
//! back: the whole state as the newest snapshot body, and each entity as the types journal
//! records carry. Only the newest format converts to and from the state.

use std::collections::{BTreeMap, BTreeSet};

use crate::clock::Timestamp;
use crate::domain::coupon::CouponState;
use crate::domain::data_platform::DataPlatformState;
use crate::domain::product::{OptionStock, ProductState, Reservation, StockLine};
use crate::domain::sales::SalesState;
use crate::domain::state::{EngineState, IdCounters};
use crate::domain::user::UserState;
use crate::wire::snapshot::{
    CouponV1, DiscountV1, IdsV1, OptionV1, OrderPaidV1, OrderV1, ProductV2, ReservationV2,
    SnapshotV3, UserCouponV1, UserV2, millis, stamp,
};

// ---- engine state -> disk ----

impl SnapshotV3 {
    pub fn from_state(sequence: u64, taken_at: Timestamp, state: &EngineState) -> SnapshotV3 {
        SnapshotV3 {
            users: state.users.values().map(UserV2::from_state).collect(),
            products: state.products.values().map(ProductV2::from_state).collect(),
            coupons: state.coupons.values().map(CouponV1::from_state).collect(),
            ..SnapshotV3::without_entities(sequence, taken_at, state)
        }
    }

    /// Everything but the users, products and coupons (the entity store keeps each of those
    /// under its own key).
    pub fn without_entities(sequence: u64, taken_at: Timestamp, state: &EngineState) -> SnapshotV3 {
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
            users: Vec::new(),
            products: Vec::new(),
            coupons: Vec::new(),
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

impl UserV2 {
    pub fn from_state(user: &UserState) -> UserV2 {
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

    pub fn into_state(self) -> UserState {
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
