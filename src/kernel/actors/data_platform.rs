//! The data-platform actor: hands every paid order to the configured sink ("MockDataCenter"),
//! at least once, in the background. It keeps each record until the sink acknowledges it, and
//! records the acknowledgement in the journal (`Delivered`); a paid order without one is
//! pending after a restart and is delivered again.
//!
//! Delivery runs in a worker task, one record at a time with retries and exponential backoff,
//! so a slow or failing sink never delays a payment: payments only cast `Deliver` here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::config::{DataPlatformSettings, SinkKind};
use crate::domain::data_platform::DataPlatformState;
use crate::kernel::actors::Recorder;
use crate::metrics::Metrics;
use crate::model::{OrderId, OrderPaid};
use crate::wire::Record;

/// The first retry waits this long; each further one doubles, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// An HTTP delivery that takes longer than this counts as failed and is retried.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where paid orders go (`data_platform.sink`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// A structured tracing event per paid order.
    Log,
    /// One JSON line per paid order, appended to a file.
    File(PathBuf),
    /// A JSON POST per paid order; any non-2xx answer is a failure.
    Http(String),
}

impl Sink {
    /// The sink `data_platform` describes; a file or URL sink without its destination is a
    /// configuration error.
    pub fn from_settings(settings: &DataPlatformSettings) -> Result<Sink, String> {
        match settings.sink {
            SinkKind::Log => Ok(Sink::Log),
            SinkKind::File => settings.path.clone().map(Sink::File).ok_or_else(|| {
                "invalid configuration: data_platform.sink = \"file\" needs data_platform.path"
                    .into()
            }),
            SinkKind::Http => settings.url.clone().map(Sink::Http).ok_or_else(|| {
                "invalid configuration: data_platform.sink = \"http\" needs data_platform.url"
                    .into()
            }),
        }
    }

    async fn deliver(&self, record: &OrderPaid, client: &reqwest::Client) -> Result<(), String> {
        match self {
            Sink::Log => {
                tracing::info!(
                    target: "data_platform",
                    order_id = record.order_id,
                    user_id = record.user_id,
                    total_amount = record.total_amount,
                    discount_amount = record.discount_amount,
                    paid_amount = record.paid_amount,
                    coupon_id = record.coupon_id,
                    paid_at = %record.paid_at,
                    "order paid"
                );
                Ok(())
            }
            Sink::File(path) => append_json_line(path, record).await,
            Sink::Http(url) => {
                let response = client
                    .post(url)
                    .json(record)
                    .timeout(HTTP_TIMEOUT)
                    .send()
                    .await
                    .map_err(|error| error.to_string())?;
                match response.status().is_success() {
                    true => Ok(()),
                    false => Err(format!("{url} answered {}", response.status())),
                }
            }
        }
    }
}

async fn append_json_line(path: &PathBuf, record: &OrderPaid) -> Result<(), String> {
    let mut line = serde_json::to_vec(record).map_err(|error| error.to_string())?;
    line.push(b'\n');
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .map_err(|error| format!("{}: {error}", path.display()))?;
    file.write_all(&line)
        .await
        .map_err(|error| error.to_string())?;
    file.flush().await.map_err(|error| error.to_string())
}

/// The data-platform actor's whole API.
pub enum DataPlatformMessage {
    /// Cast by a user actor on payment: keeps the record and queues it for delivery.
    Deliver(OrderPaid),
    /// From the worker: the sink acknowledged this order; forget it.
    Acknowledged(OrderId),
    /// From the worker: one delivery attempt failed (it will be retried).
    AttemptFailed,
    /// Replies with a copy of the state (audit, snapshot, metrics).
    Read(RpcReplyPort<DataPlatformState>),
}

pub struct DataPlatformActor {
    pub sink: Sink,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
}

pub struct Running {
    data: DataPlatformState,
    worker: mpsc::UnboundedSender<OrderPaid>,
}

impl Actor for DataPlatformActor {
    type Msg = DataPlatformMessage;
    type State = Running;
    type Arguments = DataPlatformState;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        data: DataPlatformState,
    ) -> Result<Self::State, ActorProcessingErr> {
        let (worker, queue) = mpsc::unbounded_channel();
        tokio::spawn(deliver_forever(self.sink.clone(), queue, myself));
        // Records recovered as pending were never acknowledged: deliver them again.
        for record in data.pending.values() {
            let _ = worker.send(record.clone());
        }
        Ok(Running { data, worker })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DataPlatformMessage::Deliver(record) => {
                state.data.pending.insert(record.order_id, record.clone());
                let _ = state.worker.send(record);
            }
            DataPlatformMessage::Acknowledged(order_id) => {
                if state.data.acknowledge(order_id) {
                    self.recorder.record(|| Record::Delivered { order_id });
                }
            }
            DataPlatformMessage::AttemptFailed => state.data.failed_attempts += 1,
            DataPlatformMessage::Read(reply) => {
                let _ = reply.send(state.data.clone());
            }
        }
        let backlog = state.data.pending.len() as f64;
        self.metrics.data_platform_backlog.set(backlog);
        Ok(())
    }
}

/// The worker: delivers queued records in order, retrying each until the sink takes it. Ends
/// when the actor (the only sender) stops.
async fn deliver_forever(
    sink: Sink,
    mut queue: mpsc::UnboundedReceiver<OrderPaid>,
    actor: ActorRef<DataPlatformMessage>,
) {
    let client = reqwest::Client::new();
    while let Some(record) = queue.recv().await {
        let mut backoff = FIRST_BACKOFF;
        while let Err(error) = sink.deliver(&record, &client).await {
            tracing::warn!(order_id = record.order_id, %error, ?backoff, "data platform delivery failed; will retry");
            if actor.cast(DataPlatformMessage::AttemptFailed).is_err() {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        if actor
            .cast(DataPlatformMessage::Acknowledged(record.order_id))
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_need_their_destination() {
        let mut settings = DataPlatformSettings {
            sink: SinkKind::File,
            ..DataPlatformSettings::default()
        };
        let refused = Sink::from_settings(&settings).unwrap_err();
        assert!(refused.contains("data_platform.path"), "{refused}");
        settings.path = Some(PathBuf::from("paid.jsonl"));
        let sink = Sink::from_settings(&settings);
        assert_eq!(sink, Ok(Sink::File(PathBuf::from("paid.jsonl"))));
    }
}
