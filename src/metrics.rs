//! What `GET /metrics` shows (docs/spec.md §2): HTTP requests, business outcomes, backlogs and
//! the journal's and snapshots' timings, in the Prometheus text format (0.0.4).
//!
//! Each engine has its own `Metrics` with its own recorder from `metrics-exporter-prometheus`,
//! never the process-global one: engines in one test process (or an embedded simulator beside
//! a server) keep their own counts. Everything is registered here once and handed out as
//! handles (`metrics::Counter` and friends: an atomic each), so recording is an atomic add.
//! Labels take values from bounded sets only: route templates, a handful of methods, status
//! codes and error codes.
//!
//! Names follow Prometheus conventions: a `commerce_` prefix, base units in the name
//! (`_seconds`, `_bytes`), `_total` on counters.

use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, Unit};
use dashmap::DashMap;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

/// Buckets of the latency histograms, in seconds: 50 µs to 10 s.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];
/// Buckets of records per fsync: powers of two up to the largest batches seen.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0,
];

const METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// A use case whose outcomes are counted: successes on a counter of their own, refusals by
/// their error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attempt {
    Order,
    Payment,
    CouponIssue,
}

impl Attempt {
    fn refusals_metric(self) -> &'static str {
        match self {
            Attempt::Order => "commerce_order_refusals_total",
            Attempt::Payment => "commerce_payment_refusals_total",
            Attempt::CouponIssue => "commerce_coupon_issue_refusals_total",
        }
    }
}

/// What a metric is, as Prometheus types it.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Values read when the metrics are rendered rather than kept up to date.
#[derive(Clone, Copy, Debug, Default)]
pub struct Readings {
    pub running_actors: u64,
    /// Entity actors started and stopped so far (`src/kernel/directory/residence.rs`).
    pub activations: u64,
    pub passivations: u64,
    /// The journal's running totals, when there is a journal.
    pub journal: Option<JournalTotals>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct JournalTotals {
    pub records: u64,
    pub bytes: u64,
    pub fsyncs: u64,
}

#[derive(Debug)]
pub struct Metrics {
    recorder: PrometheusRecorder,
    orders_placed: Counter,
    pub orders_paid: Counter,
    pub orders_expired: Counter,
    pub orders_cancelled: Counter,
    pub orders_archived: Counter,
    coupons_issued: Counter,
    pub charges: Counter,
    pub charged_points: Counter,
    pub journal_fsync_seconds: Histogram,
    /// From a message finding its entity passive to the entity's actor starting.
    pub actor_activation_seconds: Histogram,
    pub journal_records_per_fsync: Histogram,
    pub snapshot_seconds: Histogram,
    pub snapshot_bytes: Gauge,
    pub pending_orders: Gauge,
    pub data_platform_backlog: Gauge,
    running_actors: Gauge,
    activations: Counter,
    passivations: Counter,
    /// By entity kind (`ENTITY_KINDS`): handlers that panicked or failed.
    actor_failures: Vec<(&'static str, Counter)>,
    journal_records: Counter,
    journal_bytes: Counter,
    journal_fsyncs: Counter,
    snapshot_age_seconds: Gauge,
    /// When the newest snapshot was written; `None` before the first.
    last_snapshot: Mutex<Option<Instant>>,
    refusals: DashMap<(Attempt, &'static str), Counter, rustc_hash::FxBuildHasher>,
    requests: DashMap<(&'static str, &'static str, u16), Counter, rustc_hash::FxBuildHasher>,
    latencies: DashMap<(&'static str, &'static str), Histogram, rustc_hash::FxBuildHasher>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS_SECONDS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full("commerce_journal_records_per_fsync".into()),
                    BATCH_BUCKETS,
                )
            })
            .expect("the buckets are fixed, sorted and not empty")
            .build_recorder();
        for &(kind, name, unit, help) in DESCRIPTIONS {
            let describe = match kind {
                Kind::Counter => Recorder::describe_counter,
                Kind::Gauge => Recorder::describe_gauge,
                Kind::Histogram => Recorder::describe_histogram,
            };
            describe(&recorder, name.into(), unit, help.into());
        }
        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_name(name), &METADATA);
        let gauge = |name: &'static str| recorder.register_gauge(&Key::from_name(name), &METADATA);
        let histogram =
            |name: &'static str| recorder.register_histogram(&Key::from_name(name), &METADATA);
        Metrics {
            orders_placed: counter("commerce_orders_placed_total"),
            orders_paid: counter("commerce_orders_paid_total"),
            orders_expired: counter("commerce_orders_expired_total"),
            orders_cancelled: counter("commerce_orders_cancelled_total"),
            orders_archived: counter("commerce_orders_archived_total"),
            coupons_issued: counter("commerce_coupons_issued_total"),
            charges: counter("commerce_charges_total"),
            charged_points: counter("commerce_charged_points_total"),
            journal_fsync_seconds: histogram("commerce_journal_fsync_duration_seconds"),
            actor_activation_seconds: histogram("commerce_actor_activation_seconds"),
            journal_records_per_fsync: histogram("commerce_journal_records_per_fsync"),
            snapshot_seconds: histogram("commerce_snapshot_duration_seconds"),
            snapshot_bytes: gauge("commerce_snapshot_size_bytes"),
            pending_orders: gauge("commerce_pending_orders"),
            running_actors: gauge("commerce_running_actors"),
            activations: counter("commerce_actor_activations_total"),
            passivations: counter("commerce_actor_passivations_total"),
            actor_failures: ENTITY_KINDS
                .iter()
                .map(|&kind| {
                    let labels = vec![Label::from_static_parts("kind", kind)];
                    let key = Key::from_parts("commerce_actor_failures_total", labels);
                    (kind, recorder.register_counter(&key, &METADATA))
                })
                .collect(),
            data_platform_backlog: gauge("commerce_data_platform_backlog_records"),
            journal_records: counter("commerce_journal_records_total"),
            journal_bytes: counter("commerce_journal_written_bytes_total"),
            journal_fsyncs: counter("commerce_journal_fsyncs_total"),
            snapshot_age_seconds: gauge("commerce_snapshot_age_seconds"),
            last_snapshot: Mutex::new(None),
            refusals: DashMap::default(),
            requests: DashMap::default(),
            latencies: DashMap::default(),
            recorder,
        }
    }

    /// Counts one attempt of `what`: a success on its counter, a refusal by its error code.
    /// (A payment's success is counted by the buyer's actor, which makes it.)
    pub fn attempted(&self, what: Attempt, outcome: Result<(), &'static str>) {
        match (what, outcome) {
            (Attempt::Order, Ok(())) => self.orders_placed.increment(1),
            (Attempt::CouponIssue, Ok(())) => self.coupons_issued.increment(1),
            (Attempt::Payment, Ok(())) => {}
            (_, Err(code)) => self.refused(what, code),
        }
    }

    fn refused(&self, what: Attempt, code: &'static str) {
        let counter = cached(&self.refusals, (what, code), || {
            let labels = vec![Label::from_static_parts("code", code)];
            let key = Key::from_parts(what.refusals_metric(), labels);
            self.recorder.register_counter(&key, &METADATA)
        });
        counter.increment(1);
    }

    /// Counts one answered HTTP request of `route` (its template, or "unmatched") and records
    /// how long it took.
    pub fn request(&self, route: &'static str, method: &'static str, status: u16, took: Duration) {
        let route_label = Label::from_static_parts("route", route);
        let method_label = Label::from_static_parts("method", method);
        let counter = cached(&self.requests, (route, method, status), || {
            let status_label = Label::new("status", status.to_string());
            let labels = vec![route_label.clone(), method_label.clone(), status_label];
            let key = Key::from_parts("commerce_http_requests_total", labels);
            self.recorder.register_counter(&key, &METADATA)
        });
        counter.increment(1);
        let latency = cached(&self.latencies, (route, method), || {
            let labels = vec![route_label, method_label];
            let key = Key::from_parts("commerce_http_request_duration_seconds", labels);
            self.recorder.register_histogram(&key, &METADATA)
        });
        latency.record(took.as_secs_f64());
    }

    /// Counts a handler of an entity actor of `kind` (one of `ENTITY_KINDS`) that failed.
    pub fn actor_failed(&self, kind: &str) {
        let failures = self.actor_failures.iter();
        if let Some((_, counter)) = failures.into_iter().find(|(name, _)| *name == kind) {
            counter.increment(1);
        }
    }

    /// Notes a snapshot of `bytes` just written, which took `took`.
    pub fn snapshot_written(&self, took: Duration, bytes: u64) {
        self.snapshot_seconds.record(took.as_secs_f64());
        self.snapshot_bytes.set(bytes as f64);
        *self.last_snapshot.lock().expect("not poisoned") = Some(Instant::now());
    }

    /// Moves recorded samples into the histograms' buckets. Rendering does it too; without
    /// scrapes, this keeps the samples waiting for it bounded (call it every few seconds).
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, readings: Readings) -> String {
        self.running_actors.set(readings.running_actors as f64);
        self.activations.absolute(readings.activations);
        self.passivations.absolute(readings.passivations);
        if let Some(journal) = readings.journal {
            self.journal_records.absolute(journal.records);
            self.journal_bytes.absolute(journal.bytes);
            self.journal_fsyncs.absolute(journal.fsyncs);
        }
        if let Some(last) = *self.last_snapshot.lock().expect("not poisoned") {
            let age = last.elapsed().as_secs_f64();
            self.snapshot_age_seconds.set(age);
        }
        self.recorder.handle().render()
    }
}

/// The handle cached under `key`, registered by `register` the first time. A read lock on the
/// way every later request takes; the write lock only for the first of each label set.
fn cached<K: Eq + Hash, H: Clone>(
    handles: &DashMap<K, H, rustc_hash::FxBuildHasher>,
    key: K,
    register: impl FnOnce() -> H,
) -> H {
    if let Some(handle) = handles.get(&key) {
        return handle.clone();
    }
    handles.entry(key).or_insert_with(register).clone()
}

/// The kinds of entity with actors, as the `kind` label names them.
pub const ENTITY_KINDS: [&str; 3] = ["user", "product", "coupon"];

/// Every metric's kind and HELP line (and its unit where it has one).
const DESCRIPTIONS: &[(Kind, &str, Option<Unit>, &str)] = &[
    (
        Kind::Counter,
        "commerce_http_requests_total",
        None,
        "HTTP requests answered, by route template, method and status",
    ),
    (
        Kind::Histogram,
        "commerce_http_request_duration_seconds",
        Some(Unit::Seconds),
        "Time from a request's arrival to its response, by route template and method",
    ),
    (
        Kind::Counter,
        "commerce_orders_placed_total",
        None,
        "Orders placed",
    ),
    (
        Kind::Counter,
        "commerce_orders_paid_total",
        None,
        "Orders paid",
    ),
    (
        Kind::Counter,
        "commerce_orders_expired_total",
        None,
        "Orders expired unpaid",
    ),
    (
        Kind::Counter,
        "commerce_orders_cancelled_total",
        None,
        "Orders cancelled by their buyer",
    ),
    (
        Kind::Counter,
        "commerce_orders_archived_total",
        None,
        "Ended orders moved to the order archive",
    ),
    (
        Kind::Counter,
        "commerce_order_refusals_total",
        None,
        "Orders refused, by error code",
    ),
    (
        Kind::Counter,
        "commerce_payment_refusals_total",
        None,
        "Payments refused, by error code",
    ),
    (
        Kind::Counter,
        "commerce_coupons_issued_total",
        None,
        "Coupons issued to users",
    ),
    (
        Kind::Counter,
        "commerce_coupon_issue_refusals_total",
        None,
        "Coupon issues refused, by error code",
    ),
    (
        Kind::Counter,
        "commerce_charges_total",
        None,
        "Point charges applied",
    ),
    (
        Kind::Counter,
        "commerce_charged_points_total",
        None,
        "Points added by charges",
    ),
    (
        Kind::Gauge,
        "commerce_pending_orders",
        None,
        "Orders waiting for payment",
    ),
    (
        Kind::Gauge,
        "commerce_running_actors",
        None,
        "Actors running (users, products, coupons and services)",
    ),
    (
        Kind::Histogram,
        "commerce_actor_activation_seconds",
        Some(Unit::Seconds),
        "From a message finding its entity passive to the entity's actor starting",
    ),
    (
        Kind::Counter,
        "commerce_actor_activations_total",
        None,
        "User, product and coupon actors started from a passive state",
    ),
    (
        Kind::Counter,
        "commerce_actor_passivations_total",
        None,
        "User, product and coupon actors that stopped and handed their state back",
    ),
    (
        Kind::Counter,
        "commerce_actor_failures_total",
        None,
        "Handlers of user, product and coupon actors that panicked or failed, by entity kind; each entity was restored from the journal",
    ),
    (
        Kind::Gauge,
        "commerce_data_platform_backlog_records",
        None,
        "Paid-order records not yet delivered to the data platform",
    ),
    (
        Kind::Histogram,
        "commerce_journal_fsync_duration_seconds",
        Some(Unit::Seconds),
        "Time of one journal write and fsync",
    ),
    (
        Kind::Histogram,
        "commerce_journal_records_per_fsync",
        None,
        "Records made durable by one journal fsync",
    ),
    (
        Kind::Counter,
        "commerce_journal_records_total",
        None,
        "Records written to the journal",
    ),
    (
        Kind::Counter,
        "commerce_journal_written_bytes_total",
        Some(Unit::Bytes),
        "Bytes written to the journal",
    ),
    (
        Kind::Counter,
        "commerce_journal_fsyncs_total",
        None,
        "Journal fsyncs",
    ),
    (
        Kind::Histogram,
        "commerce_snapshot_duration_seconds",
        Some(Unit::Seconds),
        "Time to write one snapshot",
    ),
    (
        Kind::Gauge,
        "commerce_snapshot_size_bytes",
        Some(Unit::Bytes),
        "Size of the newest snapshot",
    ),
    (
        Kind::Gauge,
        "commerce_snapshot_age_seconds",
        Some(Unit::Seconds),
        "Time since the newest snapshot was written",
    ),
];
