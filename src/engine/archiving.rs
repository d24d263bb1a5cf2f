//! Moving ended orders to the archive, and reading them back.
//!
//! User actors report each order that ends (`Links::order_ended`). The archivist task keeps
//! those reports in end order and, `order.archive_after` after an order ended, moves it in a
//! batch with the others that are due:
//!
//! 1. each user actor is asked for its ended orders of the batch (`UserMessage::Ended`);
//! 2. the archive stores them all in one durable batch (`Archive::store`, fsynced);
//! 3. each user actor drops them (`UserMessage::Archived`), records `OrdersArchived` in the
//!    journal and forgets them in the directory.
//!
//! Crash points: before 2 is durable, the orders are still in memory (and the journal), and
//! are reported again at the next start. Between 2 and the `OrdersArchived` record, they are
//! in both places: recovery drops the memory copy (`archived_twice`). After it, they are in
//! the archive only. An order is never in neither. Reads that miss memory ask the archive, so
//! an order mid-move is found either way.
//!
//! A batch that fails to store is logged and retried a second later; the orders stay in
//! memory meanwhile.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::Engine;
use crate::archive::Archive;
use crate::domain::state::EngineState;
use crate::error::EngineError;
use crate::kernel::actors::Ended;
use crate::kernel::actors::user::UserMessage;
use crate::kernel::directory::{Directory, Undelivered};
use crate::model::{Order, OrderId, OrderStatus, UserId};
use crate::wire::Record;

/// The most orders moved in one batch.
const BATCH: usize = 4_096;
/// How long a failed batch waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The records that drop from `state` the ended orders `archive` already holds: what a crash
/// between storing a batch and recording it left in both places.
pub fn archived_twice(state: &EngineState, archive: &Archive) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    for user in state.users.values() {
        let mut order_ids = Vec::new();
        for (&order_id, order) in &user.orders {
            if order.status != OrderStatus::Pending && archive.contains(order_id)? {
                order_ids.push(order_id);
            }
        }
        if !order_ids.is_empty() {
            records.push(Record::OrdersArchived {
                user_id: user.id,
                order_ids,
            });
        }
    }
    Ok(records)
}

/// Runs until told to `stop` (between batches) or until no one can report any more.
pub(super) async fn archivist(
    directory: Arc<Directory>,
    archive: Archive,
    after: Duration,
    mut reports: UnboundedReceiver<Ended>,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut queue: VecDeque<Ended> = VecDeque::new();
    let mut retry_at: Option<Instant> = None;
    loop {
        let due = queue
            .front()
            .map(|first| (first.at + after).max(retry_at.unwrap_or(first.at)));
        tokio::select! {
            () = stop.notified() => return,
            report = reports.recv() => match report {
                Some(report) => queue.push_back(report),
                None => return,
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let now = Instant::now();
                let count = queue
                    .iter()
                    .take(BATCH)
                    .take_while(|ended| ended.at + after <= now)
                    .count();
                let batch: Vec<Ended> = queue.drain(..count).collect();
                match move_batch(&directory, &archive, &batch).await {
                    Ok(()) => retry_at = None,
                    Err(error) => {
                        tracing::warn!(%error, orders = batch.len(), "archiving failed; retrying");
                        for ended in batch.into_iter().rev() {
                            queue.push_front(ended);
                        }
                        retry_at = Some(now + RETRY_AFTER);
                    }
                }
            }
        }
    }
}

async fn move_batch(
    directory: &Directory,
    archive: &Archive,
    batch: &[Ended],
) -> Result<(), String> {
    let mut by_user: BTreeMap<UserId, Vec<OrderId>> = BTreeMap::new();
    for ended in batch {
        by_user
            .entry(ended.user_id)
            .or_default()
            .push(ended.order_id);
    }
    let mut orders = Vec::with_capacity(batch.len());
    let mut moving = Vec::with_capacity(by_user.len());
    for (user_id, order_ids) in by_user {
        let ended = directory
            .ask(user_id, |reply| UserMessage::Ended { order_ids, reply })
            .await;
        let ended: Vec<Order> = match ended {
            Ok(ended) => ended,
            Err(Undelivered::Unknown) => continue,
            Err(_) => return Err(format!("user {user_id} did not answer")),
        };
        moving.push((user_id, ended.iter().map(|o| o.order_id).collect()));
        orders.extend(ended);
    }
    if orders.is_empty() {
        return Ok(());
    }
    let store = archive.clone();
    tokio::task::spawn_blocking(move || store.store(&orders))
        .await
        .map_err(|error| format!("the archive writer failed: {error}"))??;
    for (user_id, order_ids) in moving {
        let archived = UserMessage::Archived { order_ids };
        if let Err(error) = directory.send(user_id, archived).await {
            // The orders stay in memory too; recovery drops them (`archived_twice`).
            tracing::error!(
                user_id,
                ?error,
                "archived orders could not be dropped from memory"
            );
        }
    }
    Ok(())
}

impl Engine {
    /// Starts the archivist, if the engine has an archive, and reports to it every ended
    /// order already in memory (their end time is unknown: they move `archive_after` from now).
    pub(super) fn start_archivist(
        &self,
        after: Duration,
        reports: Option<UnboundedReceiver<Ended>>,
        ended: Vec<(UserId, OrderId)>,
    ) {
        let (Some(archive), Some(reports)) = (self.archive(), reports) else {
            return;
        };
        let task = archivist(
            self.inner.links.directory.clone(),
            archive,
            after,
            reports,
            self.inner.stop_archivist.clone(),
        );
        *self.inner.archivist.lock().expect("not poisoned") = Some(tokio::spawn(task));
        for (user_id, order_id) in ended {
            self.links().order_ended(user_id, order_id);
        }
    }

    /// The archive, unless the engine has none or has stopped.
    fn archive(&self) -> Option<Archive> {
        self.inner.archive.read().expect("not poisoned").clone()
    }

    /// `order_id` from the archive, if it is there and `user_id` owns it (any user when
    /// `None`).
    pub(super) async fn archived_order(
        &self,
        order_id: OrderId,
        user_id: Option<UserId>,
    ) -> Result<Option<Order>, EngineError> {
        let Some(archive) = self.archive() else {
            return Ok(None);
        };
        let order = tokio::task::spawn_blocking(move || archive.order(order_id))
            .await
            .map_err(|error| EngineError::Unavailable(error.to_string()))?
            .map_err(EngineError::Unavailable)?;
        Ok(order.filter(|order| user_id.is_none_or(|user_id| order.user_id == user_id)))
    }

    /// Up to `limit` of `user_id`'s archived orders below `before`, newest first.
    pub(super) async fn archived_page(
        &self,
        user_id: UserId,
        before: Option<OrderId>,
        limit: usize,
    ) -> Result<Vec<Order>, EngineError> {
        let Some(archive) = self.archive() else {
            return Ok(Vec::new());
        };
        tokio::task::spawn_blocking(move || archive.page(user_id, before, limit))
            .await
            .map_err(|error| EngineError::Unavailable(error.to_string()))?
            .map_err(EngineError::Unavailable)
    }

    /// Every archived order (the full audit).
    pub(super) async fn archived_orders(&self) -> Result<Vec<Order>, EngineError> {
        let Some(archive) = self.archive() else {
            return Ok(Vec::new());
        };
        tokio::task::spawn_blocking(move || archive.all().collect::<Result<Vec<_>, _>>())
            .await
            .map_err(|error| EngineError::Unavailable(error.to_string()))?
            .map_err(EngineError::Unavailable)
    }
}
