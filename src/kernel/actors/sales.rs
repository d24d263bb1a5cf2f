//! The sales-statistics actor: the seed's DailyOrderStats. It keeps quantity sold per UTC day
//! and product, updated by user actors when an order is paid, and answers the popular-products
//! ranking from that aggregate instead of scanning orders.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::domain::sales::{Ranked, SalesState};

use crate::model::ProductId;

/// The sales actor's whole API.
pub enum SalesMessage {
    /// Cast by a user actor when an order is paid: adds each (product, quantity) to `day`.
    Record {
        day: u64,
        lines: Vec<(ProductId, u64)>,
    },
    /// Replies with the ranking for the `days` days ending `today` (see `SalesState::popular`).
    Popular {
        today: u64,
        days: u64,
        limit: usize,
        reply: RpcReplyPort<Vec<Ranked>>,
    },
    /// Replies with a copy of the whole state (the admin audit).
    Read(RpcReplyPort<SalesState>),
}

pub struct SalesActor;

impl Actor for SalesActor {
    type Msg = SalesMessage;
    type State = SalesState;
    type Arguments = SalesState;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: SalesState,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SalesMessage::Record { day, lines } => state.record(day, &lines),
            SalesMessage::Popular {
                today,
                days,
                limit,
                reply,
            } => {
                let _ = reply.send(state.popular(today, days, limit));
            }
            SalesMessage::Read(reply) => {
                let _ = reply.send(state.clone());
            }
        }
        Ok(())
    }
}
