//! The product actor: one per product, the only owner of its stock. Stock is kept per option as
//! `available` (orderable now), `reserved` (held by PENDING orders, per order) and `sold` (PAID).
//! Stock moves one way per order: reserve -> commit (paid) | release (expired, cancelled).
//!
//! A product with a `purchase_limit` also counts, per user, the units its PENDING and PAID
//! orders hold (`bought`). The count moves with the reservation, in the same message, so two
//! concurrent orders of one user can never pass the limit together.
//!
//! After every change the actor publishes its available counts to a `StockBoard` (atomics the
//! directory shares), so product listings read stock without a message per product. The board
//! is written only here; readers may see a value a moment old, never a torn one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::domain::product::{ProductState, StockError};
use crate::domain::state::EngineState;
use crate::kernel::actors::Recorder;
use crate::kernel::actors::user::{Placement, UserMessage};
use crate::kernel::directory::{Directory, Kind};
use crate::kernel::supervision::Supervision;
use crate::model::{OptionId, OrderId, ProductId};
use crate::wire::Record;

/// A product's business failure, carried in the reply.
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

/// What runs when a chain of messages has taken its last step: a reply sent, a command's
/// admission dropped. It runs once every change the chain made is durable.
pub type Then = Box<dyn FnOnce() + Send>;

/// An order's reservations released product after product, its reply carried to the end:
/// whoever hears that an order ended (expired, cancelled, or refused while being placed) finds
/// its stock orderable again on every product.
pub struct Releases {
    pub order_id: OrderId,
    /// The products still to release, the next one first.
    pub products: VecDeque<ProductId>,
    pub then: Then,
}

impl Releases {
    /// Hands the releases to the next product, or, when none is left, runs `then` once
    /// everything appended so far is durable. Never waits (`Directory::forward`).
    pub fn forward(mut self, directory: &Arc<Directory>, recorder: &Recorder) {
        match self.products.pop_front() {
            Some(product_id) => directory.forward(product_id, ProductMessage::Release(self)),
            None => recorder.after_durable(self.then),
        }
    }
}

/// The product actor's whole API.
pub enum ProductMessage {
    /// Reserves this product's lines of a placement for its order and buyer, all or nothing,
    /// then passes the placement on: to the next product, or back to the buyer (`Placed`).
    /// `PurchaseLimitExceeded`, `OutOfStock` (naming the first short line) or `OptionNotFound`
    /// reserves nothing here and sends the placement back to the buyer refused (`Refused`).
    Reserve(Placement),
    /// Payment: the order's reservation becomes sold. No reply; a no-op without a reservation.
    Commit { order_id: OrderId },
    /// Expiry, cancel, or a refused placement: the reservation returns to available, at most
    /// once, and the releases go on to the next product.
    Release(Releases),
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
    /// Where the state goes back when the actor stops (the product is passive again).
    pub directory: Arc<Directory>,
    pub supervision: Arc<Supervision>,
    /// When the directory asked for this actor (its activation latency ends in `pre_start`).
    pub activated_at: tokio::time::Instant,
}

impl ProductActor {
    /// Reserves this product's share of `placement` and passes the placement on (never
    /// waiting: a product waits for nobody).
    fn reserve(&self, state: &mut ProductState, mut placement: Placement) {
        let order_id = placement.order.order_id;
        let user_id = placement.order.user_id;
        let lines = std::mem::take(&mut placement.stock[placement.reserved].1);
        let recorded = lines.iter().map(|l| (l.option_id, l.quantity)).collect();
        let reserved = state.reserve(order_id, user_id, lines);
        if reserved.is_ok() {
            self.recorder.record(|| Record::ReservedFor {
                product_id: state.id,
                order_id,
                user_id,
                lines: recorded,
            });
            placement.reserved += 1;
        }
        self.board.publish(state);
        let next = placement
            .stock
            .get(placement.reserved)
            .map(|&(next, _)| next);
        match (reserved, next) {
            (Ok(()), Some(next)) => {
                let forwarded = ProductMessage::Reserve(placement);
                self.directory.forward(next, forwarded);
            }
            (Ok(()), None) => self
                .directory
                .forward(user_id, UserMessage::Placed(placement)),
            (Err(error), _) => {
                let refused = UserMessage::Refused(placement, error);
                self.directory.forward(user_id, refused);
            }
        }
    }
}

impl ProductActor {
    /// Payment: the order's reservation becomes sold (nothing without one).
    fn commit(&self, state: &mut ProductState, order_id: OrderId) {
        if state.commit(order_id) {
            let product_id = state.id;
            self.recorder.record(|| Record::Committed {
                product_id,
                order_id,
            });
        }
    }

    /// The order's reservation returns to available (nothing without one).
    fn release(&self, state: &mut ProductState, order_id: OrderId) {
        if state.release(order_id) {
            let product_id = state.id;
            self.recorder.record(|| Record::Released {
                product_id,
                order_id,
            });
        }
    }

    /// Releases `order_id`'s reservation, if any, and publishes the stock.
    fn release_published(&self, state: &mut ProductState, order_id: Option<OrderId>) {
        if let Some(order_id) = order_id {
            self.release(state, order_id);
            self.board.publish(state);
        }
    }

    /// Handles one message: a branch per kind (`handle` takes releases before it).
    fn dispatch(&self, message: ProductMessage, state: &mut ProductState) {
        // Publish before passing on or replying: once a caller hears of the change, listings
        // show it.
        match message {
            ProductMessage::Reserve(placement) => self.reserve(state, placement),
            ProductMessage::Commit { order_id } => self.commit(state, order_id),
            ProductMessage::Release(releases) => {
                self.release_published(state, Some(releases.order_id));
                releases.forward(&self.directory, &self.recorder);
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
    }

    /// Takes the product's state as the journal has it, after a handler failed
    /// (`src/kernel/supervision.rs`), settles reservations of orders that ended meanwhile (the
    /// failed message may have been their commit or release; one still queued then finds
    /// nothing to do), and publishes its stock again.
    async fn restore(&self, state: &mut ProductState) -> Result<(), ActorProcessingErr> {
        let product_id = state.id;
        let read = move |replica: &EngineState| {
            let product = replica.products.get(&product_id)?.clone();
            Some((product, replica.ended_reservations(product_id)))
        };
        let key = (Kind::Product, product_id);
        let Some((restored, ended)) = self.supervision.durable(key, read).await? else {
            return Ok(());
        };
        *state = restored;
        for settled in ended {
            match settled {
                Record::Committed { order_id, .. } => self.commit(state, order_id),
                Record::Released { order_id, .. } => self.release(state, order_id),
                _ => {}
            }
        }
        self.board.publish(state);
        Ok(())
    }
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
        self.directory.activated(self.activated_at);
        Ok(state)
    }

    /// Hands the state back to the directory: the product is passive again.
    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let passive = ProductState {
            name: state.name.clone(),
            category: std::mem::take(&mut state.category),
            options: std::mem::take(&mut state.options),
            reservations: std::mem::take(&mut state.reservations),
            bought: std::mem::take(&mut state.bought),
            ..*state
        };
        self.directory.product_stopped(myself.get_id(), passive);
        Ok(())
    }

    /// Runs the message's handler under supervision: if it fails, the product is restored. A
    /// chain of releases is held outside the handler, so it goes on whatever happens there.
    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let key = (Kind::Product, state.id);
        let (message, releases) = match message {
            ProductMessage::Release(releases) => (None, Some(releases)),
            message => (Some(message), None),
        };
        let released = releases.as_ref().map(|releases| releases.order_id);
        let handled = async {
            match message {
                Some(message) => self.dispatch(message, state),
                None => self.release_published(state, released),
            }
            self.supervision.injected(key, state);
            Ok(())
        };
        let mut restored = Ok(());
        if self.supervision.run(key, handled).await.is_err() {
            restored = self.restore(state).await;
            if restored.is_ok() {
                self.release_published(state, released);
            }
        }
        if let Some(releases) = releases {
            releases.forward(&self.directory, &self.recorder);
        }
        restored?;
        self.directory.handled::<ProductMessage>(key.1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::product::tests::product;

    #[tokio::test]
    async fn the_actor_publishes_available_stock_after_each_change() {
        let state = product();
        let board = Arc::new(StockBoard::new(&state));
        let actor = ProductActor {
            board: board.clone(),
            recorder: Recorder::default(),
            directory: Arc::new(Directory::new(
                Default::default(),
                std::time::Duration::from_secs(5),
                Default::default(),
                0,
            )),
            supervision: Arc::new(Supervision::new(None, Default::default(), None)),
            activated_at: tokio::time::Instant::now(),
        };
        let (product, handle) = Actor::spawn(None, actor, state).await.unwrap();
        let restocked = ractor::call!(product, |reply| ProductMessage::Restock {
            option_id: 10,
            quantity: 4,
            reply
        })
        .unwrap();
        assert_eq!(restocked, Ok(()));
        assert_eq!(board.available(0), 9);
        product.stop(None);
        handle.await.unwrap();
    }
}
