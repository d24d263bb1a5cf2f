//! The product actor: one per product, the only owner of its stock. Stock is kept per option as
//! `available` (orderable now), `reserved` (held by PENDING orders, per order) and `sold` (PAID).
//! Stock moves one way per order: reserve -> commit (paid) | release (expired, cancelled).
//!
//! After every change the actor publishes its available counts to a `StockBoard` (atomics the
//! directory shares), so product listings read stock without a message per product. The board
//! is written only here; readers may see a value a moment old, never a torn one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use thiserror::Error;

use crate::actors::Recorder;
use crate::journal::Record;
use crate::model::{MAX_EXACT_INTEGER, OptionId, OrderId, ProductId, Won};

/// A product's business failure, carried in the reply.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StockError {
    #[error(
        "product {product_id} option {option_id}: {available} available, {requested} requested"
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

/// Everything a product actor owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductState {
    pub id: ProductId,
    pub name: String,
    pub category: String,
    pub price: Won,
    pub options: Vec<OptionStock>,
    /// What each PENDING order holds here.
    pub reservations: BTreeMap<OrderId, Vec<StockLine>>,
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

    /// Reserves every line for `order_id`, or nothing: all lines are checked before any moves.
    pub fn reserve(&mut self, order_id: OrderId, lines: Vec<StockLine>) -> Result<(), StockError> {
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
        self.reservations.entry(order_id).or_default().extend(lines);
        Ok(())
    }

    /// Turns the order's reservation into sold stock. Returns false if it holds none here.
    pub fn commit(&mut self, order_id: OrderId) -> bool {
        self.settle(order_id, |option, quantity| option.sold += quantity)
    }

    /// Returns the order's reservation to available stock. Returns false if it holds none, so
    /// a second release (timer and cancel racing, a replayed message) restores nothing twice.
    pub fn release(&mut self, order_id: OrderId) -> bool {
        self.settle(order_id, |option, quantity| option.available += quantity)
    }

    fn settle(&mut self, order_id: OrderId, apply: impl Fn(&mut OptionStock, u64)) -> bool {
        let Some(lines) = self.reservations.remove(&order_id) else {
            return false;
        };
        for line in lines {
            let option = self
                .options
                .iter_mut()
                .find(|option| option.id == line.option_id)
                .expect("a reservation only names options of its product");
            option.reserved -= line.quantity;
            apply(option, line.quantity);
        }
        true
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

/// The available stock of each option of one product, in option order, readable by anyone.
#[derive(Debug)]
pub struct StockBoard(Box<[AtomicU64]>);

impl StockBoard {
    pub fn new(state: &ProductState) -> StockBoard {
        let board = StockBoard(state.options.iter().map(|_| AtomicU64::new(0)).collect());
        board.publish(state);
        board
    }

    fn publish(&self, state: &ProductState) {
        for (slot, option) in self.0.iter().zip(&state.options) {
            slot.store(option.available, Ordering::Release);
        }
    }

    pub fn available(&self, option_index: usize) -> u64 {
        self.0[option_index].load(Ordering::Acquire)
    }
}

/// The product actor's whole API.
pub enum ProductMessage {
    /// Reserves `lines` for `order_id`, all or nothing. Replies `OutOfStock` naming the first
    /// short line (reserving nothing), or `OptionNotFound`.
    Reserve {
        order_id: OrderId,
        lines: Vec<StockLine>,
        reply: RpcReplyPort<Result<(), StockError>>,
    },
    /// Payment: the order's reservation becomes sold. No reply; a no-op without a reservation.
    Commit { order_id: OrderId },
    /// Expiry, cancel, or a failed multi-product order: the reservation returns to available,
    /// at most once. Replies (if asked) once the stock is visible again.
    Release {
        order_id: OrderId,
        reply: Option<RpcReplyPort<()>>,
    },
    /// Adds `quantity` to an option. Fails with `OptionNotFound`.
    Restock {
        option_id: OptionId,
        quantity: u64,
        reply: RpcReplyPort<Result<(), StockError>>,
    },
    /// Replies with a copy of the whole state (the admin audit).
    Read(RpcReplyPort<ProductState>),
}

pub struct ProductActor {
    pub board: Arc<StockBoard>,
    pub recorder: Recorder,
}

impl Actor for ProductActor {
    type Msg = ProductMessage;
    type State = ProductState;
    type Arguments = ProductState;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: ProductState,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Publish before replying: once a caller hears "reserved", listings show the drop.
        match message {
            ProductMessage::Reserve {
                order_id,
                lines,
                reply,
            } => {
                let recorded = lines.iter().map(|l| (l.option_id, l.quantity)).collect();
                let result = state.reserve(order_id, lines);
                if result.is_ok() {
                    self.recorder.record(|| Record::Reserved {
                        product_id: state.id,
                        order_id,
                        lines: recorded,
                    });
                }
                self.board.publish(state);
                let _ = reply.send(result);
            }
            ProductMessage::Commit { order_id } => {
                if state.commit(order_id) {
                    let product_id = state.id;
                    self.recorder.record(|| Record::Committed {
                        product_id,
                        order_id,
                    });
                }
            }
            ProductMessage::Release { order_id, reply } => {
                if state.release(order_id) {
                    let product_id = state.id;
                    self.recorder.record(|| Record::Released {
                        product_id,
                        order_id,
                    });
                }
                self.board.publish(state);
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            ProductMessage::Restock {
                option_id,
                quantity,
                reply,
            } => {
                let result = state.restock(option_id, quantity);
                if result.is_ok() {
                    let product_id = state.id;
                    self.recorder.record(|| Record::Restocked {
                        product_id,
                        option_id,
                        quantity,
                    });
                }
                self.board.publish(state);
                let _ = reply.send(result);
            }
            ProductMessage::Read(reply) => {
                let _ = reply.send(state.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product() -> ProductState {
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
            reservations: BTreeMap::new(),
        }
    }

    fn line(option_id: OptionId, quantity: u64) -> StockLine {
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
        state.reserve(7, vec![line(10, 3), line(11, 2)]).unwrap();
        assert_eq!(state.options[0].available, 2);
        assert_eq!(state.options[0].reserved, 3);
        assert_eq!(state.options[1].available, 0);
        assert!(conserved(&state));
    }

    #[test]
    fn reserve_is_all_or_nothing() {
        let mut state = product();
        let error = state
            .reserve(7, vec![line(10, 1), line(11, 3)])
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
        let error = state.reserve(7, vec![line(99, 1)]).unwrap_err();
        assert!(matches!(
            error,
            StockError::OptionNotFound { option_id: 99, .. }
        ));
    }

    #[test]
    fn commit_makes_the_reservation_sold() {
        let mut state = product();
        state.reserve(7, vec![line(10, 3)]).unwrap();
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
        state.reserve(7, vec![line(10, 3)]).unwrap();
        assert!(state.release(7));
        assert!(!state.release(7));
        assert_eq!(state.options[0].available, 5);
        assert_eq!(state.options[0].reserved, 0);
        assert!(conserved(&state));
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

    #[tokio::test]
    async fn the_actor_publishes_available_stock_after_each_change() {
        let state = product();
        let board = Arc::new(StockBoard::new(&state));
        let actor = ProductActor {
            board: board.clone(),
            recorder: Recorder::default(),
        };
        let (product, handle) = Actor::spawn(None, actor, state).await.unwrap();
        let reply = ractor::call!(product, |reply| ProductMessage::Reserve {
            order_id: 1,
            lines: vec![line(10, 4)],
            reply
        })
        .unwrap();
        assert_eq!(reply, Ok(()));
        assert_eq!(board.available(0), 1);
        product.stop(None);
        handle.await.unwrap();
    }
}
