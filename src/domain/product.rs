//! A product's stock and its transitions: per option `available`, `reserved` (per order) and
//! `sold`, moving reserve -> commit | release, and per-user purchase-limit counts. Plain data and
//! synchronous methods; the product actor (`src/kernel/actors/product.rs`) runs them, and so does replay.

use std::collections::BTreeMap;
use std::sync::Arc;

use thiserror::Error;

use crate::code::Code;
use crate::model::{MAX_EXACT_INTEGER, OptionId, OrderId, ProductId, UserId, Won};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StockError {
    #[error(
        "out of stock: product {product_id} option {option_id} has {available} available, {requested} requested"
    )]
    OutOfStock {
        product_id: ProductId,
        option_id: OptionId,
        requested: u64,
        available: u64,
    },
    #[error("option {option_id} not found on product {product_id}")]
    OptionNotFound {
        product_id: ProductId,
        option_id: OptionId,
    },
    #[error(
        "restocking {quantity} would take option {option_id}'s stock past the limit of {MAX_STOCK}"
    )]
    StockLimitExceeded { option_id: OptionId, quantity: u64 },
    #[error(
        "product {product_id} allows {limit} units per user: user {user_id} holds {held} in pending and paid orders and asked for {requested}"
    )]
    PurchaseLimitExceeded {
        product_id: ProductId,
        user_id: UserId,
        limit: u64,
        held: u64,
        requested: u64,
    },
}

impl StockError {
    pub fn code(&self) -> Code {
        match self {
            StockError::OutOfStock { .. } => Code::OutOfStock,
            StockError::OptionNotFound { .. } => Code::OptionNotFound,
            StockError::StockLimitExceeded { .. } => Code::InvalidRequest,
            StockError::PurchaseLimitExceeded { .. } => Code::PurchaseLimitExceeded,
        }
    }
}

/// The most stock an option may ever hold (initial plus restocked). Keeps every stock sum far
/// from u64 overflow.
pub const MAX_STOCK: u64 = MAX_EXACT_INTEGER;

/// One line of a reservation: `quantity` units of `option_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StockLine {
    pub option_id: OptionId,
    pub quantity: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionStock {
    pub id: OptionId,
    pub name: String,
    /// Stock the option started with (seed or admin creation).
    pub initial: u64,
    /// Everything added by restocks since.
    pub restocked: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
}

/// What one PENDING order holds of a product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The buyer (0 in reservations recorded before purchase limits existed; such products
    /// have no limit).
    pub user_id: UserId,
    pub lines: Vec<StockLine>,
}

impl Reservation {
    fn units(&self) -> u64 {
        self.lines.iter().map(|line| line.quantity).sum()
    }
}

/// Everything a product actor owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductState {
    pub id: ProductId,
    /// Shared with every order line that names the product.
    pub name: Arc<str>,
    pub category: String,
    pub price: Won,
    pub options: Vec<OptionStock>,
    /// Units one user may hold in PENDING and PAID orders together; `None`: no limit.
    pub purchase_limit: Option<u64>,
    /// What each PENDING order holds here.
    pub reservations: BTreeMap<OrderId, Reservation>,
    /// With a purchase limit: units each user holds in PENDING and PAID orders (users holding
    /// none are absent). Empty without a limit.
    pub bought: BTreeMap<UserId, u64>,
}

impl ProductState {
    fn option_index(&self, option_id: OptionId) -> Result<usize, StockError> {
        self.options
            .iter()
            .position(|option| option.id == option_id)
            .ok_or(StockError::OptionNotFound {
                product_id: self.id,
                option_id,
            })
    }

    /// Reserves every line for `order_id` of `user_id`, or nothing: the purchase limit and
    /// every line are checked before anything moves.
    pub fn reserve(
        &mut self,
        order_id: OrderId,
        user_id: UserId,
        lines: Vec<StockLine>,
    ) -> Result<(), StockError> {
        let requested = lines
            .iter()
            .fold(0u64, |sum, line| sum.saturating_add(line.quantity));
        if let Some(limit) = self.purchase_limit {
            let held = self.bought.get(&user_id).copied().unwrap_or(0);
            if held.saturating_add(requested) > limit {
                return Err(StockError::PurchaseLimitExceeded {
                    product_id: self.id,
                    user_id,
                    limit,
                    held,
                    requested,
                });
            }
        }
        let mut indexes = Vec::with_capacity(lines.len());
        for line in &lines {
            let index = self.option_index(line.option_id)?;
            let available = self.options[index].available;
            if available < line.quantity {
                return Err(StockError::OutOfStock {
                    product_id: self.id,
                    option_id: line.option_id,
                    requested: line.quantity,
                    available,
                });
            }
            indexes.push(index);
        }
        for (index, line) in indexes.into_iter().zip(&lines) {
            let option = &mut self.options[index];
            option.available -= line.quantity;
            option.reserved += line.quantity;
        }
        if self.purchase_limit.is_some() {
            *self.bought.entry(user_id).or_default() += requested;
        }
        let reservation = self.reservations.entry(order_id).or_insert(Reservation {
            user_id,
            lines: Vec::new(),
        });
        reservation.lines.extend(lines);
        Ok(())
    }

    /// Turns the order's reservation into sold stock (its units keep counting against the
    /// purchase limit). Returns false if it holds none here.
    pub fn commit(&mut self, order_id: OrderId) -> bool {
        self.settle(order_id, |option, quantity| option.sold += quantity)
            .is_some()
    }

    /// Returns the order's reservation to available stock, and its units to the buyer's
    /// purchase limit. Returns false if it holds none, so a second release (timer and cancel
    /// racing, a replayed message) restores nothing twice.
    pub fn release(&mut self, order_id: OrderId) -> bool {
        let Some(reservation) =
            self.settle(order_id, |option, quantity| option.available += quantity)
        else {
            return false;
        };
        if let Some(held) = self.bought.get_mut(&reservation.user_id) {
            *held = held.saturating_sub(reservation.units());
            if *held == 0 {
                self.bought.remove(&reservation.user_id);
            }
        }
        true
    }

    fn settle(
        &mut self,
        order_id: OrderId,
        apply: impl Fn(&mut OptionStock, u64),
    ) -> Option<Reservation> {
        let reservation = self.reservations.remove(&order_id)?;
        for line in &reservation.lines {
            let option = self
                .options
                .iter_mut()
                .find(|option| option.id == line.option_id)
                .expect("a reservation only names options of its product");
            option.reserved -= line.quantity;
            apply(option, line.quantity);
        }
        Some(reservation)
    }

    /// Adds `quantity` to an option, unless its total stock would pass `MAX_STOCK`.
    pub fn restock(&mut self, option_id: OptionId, quantity: u64) -> Result<(), StockError> {
        let index = self.option_index(option_id)?;
        let option = &mut self.options[index];
        let stocked = option
            .initial
            .checked_add(option.restocked)
            .and_then(|stocked| stocked.checked_add(quantity));
        if stocked.is_none_or(|stocked| stocked > MAX_STOCK) {
            return Err(StockError::StockLimitExceeded {
                option_id,
                quantity,
            });
        }
        option.restocked += quantity;
        option.available += quantity;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn product() -> ProductState {
        let option = |id, stock| OptionStock {
            id,
            name: format!("option {id}"),
            initial: stock,
            restocked: 0,
            available: stock,
            reserved: 0,
            sold: 0,
        };
        ProductState {
            id: 1,
            name: "Keyboard".into(),
            category: "electronics".into(),
            price: 50_000,
            options: vec![option(10, 5), option(11, 2)],
            purchase_limit: None,
            reservations: BTreeMap::new(),
            bought: BTreeMap::new(),
        }
    }

    pub(crate) fn line(option_id: OptionId, quantity: u64) -> StockLine {
        StockLine {
            option_id,
            quantity,
        }
    }

    fn conserved(state: &ProductState) -> bool {
        state.options.iter().all(|option| {
            option.initial + option.restocked == option.available + option.reserved + option.sold
        })
    }

    #[test]
    fn reserve_moves_available_to_reserved() {
        let mut state = product();
        state.reserve(7, 1, vec![line(10, 3), line(11, 2)]).unwrap();
        assert_eq!(state.options[0].available, 2);
        assert_eq!(state.options[0].reserved, 3);
        assert_eq!(state.options[1].available, 0);
        assert!(conserved(&state));
    }

    #[test]
    fn reserve_is_all_or_nothing() {
        let mut state = product();
        let error = state
            .reserve(7, 1, vec![line(10, 1), line(11, 3)])
            .unwrap_err();
        assert_eq!(
            error,
            StockError::OutOfStock {
                product_id: 1,
                option_id: 11,
                requested: 3,
                available: 2
            }
        );
        assert_eq!(state, product(), "a failed reservation changes nothing");
    }

    #[test]
    fn reserving_an_unknown_option_fails() {
        let mut state = product();
        let error = state.reserve(7, 1, vec![line(99, 1)]).unwrap_err();
        assert!(matches!(
            error,
            StockError::OptionNotFound { option_id: 99, .. }
        ));
    }

    #[test]
    fn commit_makes_the_reservation_sold() {
        let mut state = product();
        state.reserve(7, 1, vec![line(10, 3)]).unwrap();
        assert!(state.commit(7));
        assert_eq!((state.options[0].reserved, state.options[0].sold), (0, 3));
        assert!(!state.commit(7), "a second commit finds nothing");
        assert!(!state.release(7), "a paid order never gets its stock back");
        assert_eq!(state.options[0].available, 2);
        assert!(conserved(&state));
    }

    #[test]
    fn release_restores_stock_exactly_once() {
        let mut state = product();
        state.reserve(7, 1, vec![line(10, 3)]).unwrap();
        assert!(state.release(7));
        assert!(!state.release(7));
        assert_eq!(state.options[0].available, 5);
        assert_eq!(state.options[0].reserved, 0);
        assert!(conserved(&state));
    }

    #[test]
    fn the_purchase_limit_counts_pending_and_paid_units_per_user() {
        let mut state = product();
        state.purchase_limit = Some(3);
        state.reserve(1, 1, vec![line(10, 2)]).unwrap();
        let before = state.clone();
        assert_eq!(
            state.reserve(2, 1, vec![line(10, 1), line(11, 1)]),
            Err(StockError::PurchaseLimitExceeded {
                product_id: 1,
                user_id: 1,
                limit: 3,
                held: 2,
                requested: 2
            })
        );
        assert_eq!(state, before, "a refused reservation changes nothing");
        state.reserve(3, 2, vec![line(10, 3)]).unwrap();
        assert!(state.commit(1), "paid units still count");
        assert!(state.reserve(4, 1, vec![line(11, 2)]).is_err());
        state.reserve(5, 1, vec![line(11, 1)]).unwrap();
        assert!(state.release(5), "released units count no more");
        assert_eq!(state.bought, BTreeMap::from([(1, 2), (2, 3)]));
        assert!(state.release(3));
        assert_eq!(state.bought, BTreeMap::from([(1, 2)]));
        assert!(conserved(&state));
    }

    #[test]
    fn without_a_limit_nothing_is_counted() {
        let mut state = product();
        state.reserve(1, 1, vec![line(10, 5)]).unwrap();
        assert!(state.bought.is_empty());
    }

    #[test]
    fn restock_adds_to_available_and_is_counted() {
        let mut state = product();
        state.restock(11, 10).unwrap();
        assert_eq!(state.options[1].available, 12);
        assert_eq!(state.options[1].restocked, 10);
        assert!(state.restock(99, 1).is_err());
        assert!(conserved(&state));
    }

    #[test]
    fn restock_never_takes_stock_past_the_limit() {
        let mut state = product();
        let before = state.clone();
        for quantity in [u64::MAX, MAX_STOCK, MAX_STOCK - 4] {
            assert_eq!(
                state.restock(10, quantity),
                Err(StockError::StockLimitExceeded {
                    option_id: 10,
                    quantity
                })
            );
        }
        assert_eq!(state, before, "a refused restock changes nothing");
        state.restock(10, MAX_STOCK - 5).unwrap();
        assert_eq!(state.options[0].available, MAX_STOCK);
        assert!(conserved(&state));
    }
}
