//! Wiring: settings -> engine -> HTTP server, and the shutdown order. `main.rs` calls `run`;
//! tests call `start` with port 0 and stop the server themselves.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::archive::Archive;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::state::EngineState;
use crate::engine::{Engine, EngineConfig, archived_twice};
use crate::error::EngineError;
use crate::http::{BuyerAuth, RouteOptions, ServerOptions, routes, serve};
use crate::journal::{self, Faults, Journal, JournalOptions, RecoveryError};
use crate::kernel::actors::data_platform::Sink;
use crate::kernel::directory::Passivation;
use crate::seed::Seed;
use crate::snapshot::{self, SnapshotError};

/// In-flight requests get this long to finish at shutdown; slow clients are cut off after it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for an actor before answering 503.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often recorded histogram samples are folded into their buckets.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("the engine could not start: {0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Snapshot(#[from] SnapshotError),
    #[error("{0}")]
    Recovery(#[from] RecoveryError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the final snapshot failed (the journal still holds every change): {0}")]
    FinalSnapshot(EngineError),
}

/// Choices made on the command line rather than in settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartOptions {
    /// Start even when snapshot files exist but none is readable (from the seed and the
    /// journal), and when the journal is damaged (from the records before the damage).
    pub ignore_unreadable_snapshots: bool,
}

/// A running server.
pub struct Running {
    /// Where it listens (the real port when the settings asked for port 0).
    pub local_addr: SocketAddr,
    pub engine: Engine,
    stop_accepting: oneshot::Sender<()>,
    server: JoinHandle<()>,
    periodic_snapshots: JoinHandle<()>,
    stop_snapshots: oneshot::Sender<()>,
    metrics_upkeep: JoinHandle<()>,
}

pub fn engine_config(settings: &Settings) -> Result<EngineConfig, StartError> {
    Ok(EngineConfig {
        limits: settings.limits,
        order_expiry: settings.order.expiry,
        sink: Sink::from_settings(&settings.data_platform).map_err(StartError::Config)?,
        call_timeout: CALL_TIMEOUT,
        journal: None,
        archive: None,
        archive_after: settings.order.archive_after,
        metrics: std::sync::Arc::default(),
        passivation: Passivation::from(&settings.actors),
        panics: None,
    })
}

/// Where the state lives on disk and how it is written.
#[derive(Clone)]
pub struct Storage {
    pub journal: JournalOptions,
    /// Start over unreadable snapshots or a damaged journal (see `StartOptions`).
    pub ignore_damage: bool,
    /// A test double for the journal's file operations.
    pub faults: Option<Faults>,
}

/// Recovers the state in the storage directory (the entity store, or a newer snapshot file,
/// and the journal after it; `seed` when there is neither), opens the journal on it and starts
/// the engine.
///
/// What a crash left unfinished is appended to the journal and applied before anyone is
/// served; a start without a snapshot writes one at once (in the background), so the seed is
/// not needed again.
pub async fn open(
    mut config: EngineConfig,
    storage: Storage,
    clock: Clock,
    seed: impl FnOnce() -> Result<EngineState, String> + Send + 'static,
) -> Result<Engine, StartError> {
    let dir = storage.journal.dir.clone();
    let ignore_damage = storage.ignore_damage;
    let recovered = tokio::task::spawn_blocking(move || {
        snapshot::check_writable(&dir)?;
        journal::recover(&dir, ignore_damage, seed)
    })
    .await
    .map_err(|error| StartError::Config(format!("recovery failed: {error}")))??;
    let start = journal::Start {
        position: recovered.position,
        next_sequence: recovered.next_sequence,
        next_snapshot: recovered.next_snapshot,
    };
    let archive_dir = storage.journal.dir.clone();
    let archive = tokio::task::spawn_blocking(move || Archive::open(&archive_dir))
        .await
        .map_err(|error| StartError::Config(format!("opening the archive failed: {error}")))?
        .map_err(StartError::Config)?;
    if !recovered.from_snapshot && archive.all().next().is_some() {
        return Err(StartError::Config(format!(
            "{} holds archived orders but there is no snapshot to go with them: starting from \
             the seed would give their ids again. Restore the snapshots, or remove the archive \
             too to start afresh",
            archive.path().display()
        )));
    }
    let metrics = config.metrics.clone();
    let (journal, replica) = Journal::open(storage.journal, start, storage.faults, metrics)?;
    let mut state = recovered.state;
    // Order ids never repeat, even after a start from an older snapshot file: above every
    // archived order too.
    if let Some(last) = archive.last_order_id().map_err(StartError::Config)? {
        let next = &mut state.ids.next_order_id;
        *next = (*next).max(last.saturating_add(1));
    }
    let mut position = recovered.position;
    let mut unfinished = recovered.unfinished;
    let mut changed = recovered.changed;
    // A crash between storing archived orders and recording it left them in both places.
    unfinished.extend(archived_twice(&state, &archive).map_err(StartError::Config)?);
    for record in unfinished {
        changed.mark(&record);
        state
            .apply(record.clone())
            .map_err(|error| StartError::Config(format!("finishing a crash: {error}")))?;
        position = journal.append(record);
    }
    config.journal = Some(journal);
    config.archive = Some(archive);
    let engine = Engine::start(config, clock, &state).await?;
    replica.start(state, position, changed);
    if !recovered.from_snapshot {
        // A snapshot file of the seed and a first flush of the store, written in the
        // background like any: until they are, recovery starts again from the seed and
        // replays the journal, so serving before it loses nothing. (At ten million users it
        // takes seconds: the state is audited, encoded and fsynced, twice.)
        let first = engine.clone();
        tokio::spawn(async move {
            if let Err(error) = first.snapshot().await {
                tracing::error!(%error, "the first snapshot failed; the seed and the journal still hold everything");
            }
        });
    }
    Ok(engine)
}

/// Loads the state, starts the engine and begins serving.
pub async fn start(settings: &Settings, options: StartOptions) -> Result<Running, StartError> {
    settings.validate().map_err(StartError::Config)?;
    let buyers = BuyerAuth::from_settings(&settings.auth).map_err(StartError::Config)?;
    let storage = Storage {
        journal: JournalOptions::from_settings(settings),
        ignore_damage: options.ignore_unreadable_snapshots,
        faults: None,
    };
    let (seed_path, limits) = (settings.seed.path.clone(), settings.limits);
    let seed = move || {
        tracing::info!(seed = %seed_path.display(), "no snapshot: starting from the seed");
        Seed::load(&seed_path).and_then(|seed| seed.into_state(&limits))
    };
    let engine = open(engine_config(settings)?, storage, Clock::system(), seed).await?;
    return_freed_memory().await;
    let addr = settings.server.addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let options = RouteOptions {
        body_limit_bytes: settings.server.body_limit,
        admin_token: settings.admin.token.clone(),
        buyers,
        metrics: settings.metrics.enabled,
    };
    let (stop_accepting, stopped) = oneshot::channel::<()>();
    let server = serve(
        listener,
        routes(engine.clone(), options),
        ServerOptions::from(&settings.server),
        async {
            let _ = stopped.await;
        },
    );
    let server = tokio::spawn(server);
    let (stop_snapshots, snapshots_stopped) = oneshot::channel();
    let interval = settings.snapshot.interval;
    let periodic_snapshots =
        tokio::spawn(snapshot_every(interval, engine.clone(), snapshots_stopped));
    let metrics_upkeep = tokio::spawn(metrics_upkeep(engine.clone()));
    tracing::info!(%local_addr, "commerce-engine listening");
    Ok(Running {
        local_addr,
        engine,
        stop_accepting,
        server,
        periodic_snapshots,
        stop_snapshots,
        metrics_upkeep,
    })
}

/// Start-up frees what it built the state from (the parsed seed or the decoded snapshot, the
/// journal's records, the first snapshot's buffer): gigabytes at ten million users, which the
/// allocator (mimalloc, `src/main.rs`) would otherwise keep for reuse. Give them back to the
/// OS, from a worker and from the blocking pool where recovery ran, so the idle RSS is the
/// state. Harmless under another allocator: mimalloc's own heaps are then empty.
async fn return_freed_memory() {
    // SAFETY: asks the allocator to return freed memory to the OS; no pointers involved.
    let collect = || unsafe { libmimalloc_sys::mi_collect(true) };
    collect();
    let _ = tokio::task::spawn_blocking(collect).await;
}

/// Folds recorded samples into the metrics' histograms every few seconds, so that they stay
/// bounded when nothing scrapes `GET /metrics`. Holds no state: it is aborted at shutdown.
async fn metrics_upkeep(engine: Engine) {
    let mut ticks = tokio::time::interval(METRICS_UPKEEP);
    loop {
        ticks.tick().await;
        engine.metrics().upkeep();
    }
}

/// Flushes what changed into the entity store every `interval` (the periodic snapshot)
/// until told to stop.
async fn snapshot_every(interval: Duration, engine: Engine, mut stop: oneshot::Receiver<()>) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = &mut stop => return,
        }
        // Never interrupted: a stop waits for the flush in progress. Errors are logged inside
        // `flush`; what changed stays marked for the next tick.
        let _ = engine.flush().await;
    }
}

impl Running {
    /// Shuts down in a fixed order:
    /// 1. stop accepting connections;
    /// 2. let in-flight requests finish (at most `DRAIN_TIMEOUT`, then they are cut off);
    /// 3. stop periodic snapshots and write the final one (everything acknowledged is in it);
    /// 4. stop the actors, then the journal (its last records synced).
    pub async fn shutdown(self) -> Result<(), StartError> {
        self.shutdown_within(DRAIN_TIMEOUT).await
    }

    /// `shutdown`, giving in-flight requests `drain` to finish.
    pub async fn shutdown_within(self, drain: Duration) -> Result<(), StartError> {
        let _ = self.stop_accepting.send(());
        let mut server = self.server;
        if tokio::time::timeout(drain, &mut server).await.is_err() {
            tracing::warn!("in-flight requests did not finish in {drain:?}; closing them");
            server.abort();
        }
        self.metrics_upkeep.abort();
        let _ = self.stop_snapshots.send(());
        let _ = self.periodic_snapshots.await;
        let last = self.engine.snapshot().await;
        self.engine.stop().await;
        let info = last.map_err(StartError::FinalSnapshot)?;
        tracing::info!(path = %info.path.display(), "final snapshot written; stopped");
        Ok(())
    }
}

/// Runs the server until `shutdown` resolves, then shuts down in order.
pub async fn run(
    settings: Settings,
    options: StartOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let running = start(&settings, options).await?;
    shutdown.await;
    tracing::info!("shutdown requested");
    running.shutdown().await
}
