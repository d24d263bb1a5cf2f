//! The journal's records: one per change to the state, written by the actor (or, for admin
//! creations, the engine) that makes the change, in the order changes are
//! made. These are on-disk types like the snapshot model: they hold plain numbers and the
//! snapshot's version-1 model types, never actor state, and must keep decoding forever. A new
//! kind of change is a new variant at the end; an existing variant never changes.
//!
//! Replaying a record (`EngineState::apply`) runs the same state method the actor ran, with
//! the values the actor recorded (the time, the amounts it computed), so replay cannot drift
//! from what was acknowledged.

use serde::{Deserialize, Serialize};

use crate::wire::snapshot::{CouponV1, OrderV1, ProductV1, ProductV2};

/// What happened. Ids are those of the entities changed; times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// An admin created a user.
    UserCreated { user_id: u64, balance: u64 },
    /// Points were added to a user's balance.
    Charged { user_id: u64, amount: u64 },
    /// A PENDING order was handed to its buyer; its stock was reserved by earlier `Reserved`
    /// records.
    OrderPlaced { user_id: u64, order: OrderV1 },
    /// The buyer paid: balance debited, coupon used, order PAID. Replay also adds the sale to
    /// the daily statistics and queues the order for the data platform, so those can never
    /// miss a payment.
    OrderPaid {
        user_id: u64,
        order_id: u64,
        coupon_id: Option<u64>,
        discount_amount: u64,
        paid_amount: u64,
        paid_at: u64,
    },
    /// The buyer cancelled a PENDING order.
    OrderCancelled { user_id: u64, order_id: u64 },
    /// A PENDING order passed its deadline (seen at `at`).
    OrderExpired {
        user_id: u64,
        order_id: u64,
        at: u64,
    },
    /// An admin created a product (written before purchase limits existed).
    ProductCreated { product: ProductV1 },
    /// A product reserved stock for an order: `lines` are (option id, quantity). Written
    /// before purchase limits existed; the buyer is unknown and counts as user 0.
    Reserved {
        product_id: u64,
        order_id: u64,
        lines: Vec<(u64, u64)>,
    },
    /// A product turned an order's reservation into sold stock (the order was paid).
    Committed { product_id: u64, order_id: u64 },
    /// A product returned an order's reservation to available stock (expired, cancelled, or
    /// a placement that failed on another product).
    Released { product_id: u64, order_id: u64 },
    /// An admin added stock to an option.
    Restocked {
        product_id: u64,
        option_id: u64,
        quantity: u64,
    },
    /// An admin created a coupon.
    CouponCreated { coupon: CouponV1 },
    /// A coupon issued one unit to a user: replay takes the unit and gives it to the user.
    CouponIssued {
        coupon_id: u64,
        user_id: u64,
        issued_at: u64,
    },
    /// The data platform's sink acknowledged a paid order.
    Delivered { order_id: u64 },
    /// Order ids below `below` may be in use: recovery never gives them again, even the ids
    /// of placements that were refused or cut short by a crash.
    OrderIdsTaken { below: u64 },
    /// An admin created a product (with its purchase limit); replaces `ProductCreated`.
    ProductCreatedV2 { product: ProductV2 },
    /// A product reserved stock for an order of `user_id` (whose purchase-limit count grows
    /// with it); replaces `Reserved`.
    ReservedFor {
        product_id: u64,
        order_id: u64,
        user_id: u64,
        lines: Vec<(u64, u64)>,
    },
    /// Ended orders of `user_id` left memory: the archive held them, durably, before this
    /// was written.
    OrdersArchived { user_id: u64, order_ids: Vec<u64> },
}
