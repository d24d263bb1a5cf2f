//! Wiring: settings -> engine -> HTTP server, and the shutdown order. `main.rs` calls `run`;
//! tests call `start` with port 0 and stop the server themselves.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::Settings;
use crate::engine::{Engine, EngineConfig};
use crate::error::EngineError;
use crate::http::{RouteOptions, routes};
use crate::seed::Seed;

/// In-flight requests get this long to finish at shutdown; slow clients are cut off after it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for an actor before answering 503.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Seed(String),
    #[error("the engine could not start: {0}")]
    Engine(#[from] EngineError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running server.
pub struct Running {
    /// Where it listens (the real port when the settings asked for port 0).
    pub local_addr: SocketAddr,
    pub engine: Engine,
    stop_accepting: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

pub fn engine_config(settings: &Settings) -> Result<EngineConfig, StartError> {
    Ok(EngineConfig {
        limits: settings.limits,
        order_expiry: settings.order.expiry,
        sink: settings.sink().map_err(StartError::Config)?,
        call_timeout: CALL_TIMEOUT,
    })
}

/// Loads the state, starts the engine and begins serving.
pub async fn start(settings: &Settings) -> Result<Running, StartError> {
    settings.validate().map_err(StartError::Config)?;
    let state = Seed::load(&settings.seed.path)
        .and_then(|seed| seed.into_state(&settings.limits))
        .map_err(StartError::Seed)?;
    let engine = Engine::start(engine_config(settings)?, Clock::system(), state).await?;
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
    };
    let (stop_accepting, stopped) = oneshot::channel::<()>();
    let server = warp::serve(routes(engine.clone(), options))
        .incoming(listener)
        .graceful(async {
            let _ = stopped.await;
        })
        .run();
    let server = tokio::spawn(server);
    tracing::info!(%local_addr, "commerce-engine listening");
    Ok(Running {
        local_addr,
        engine,
        stop_accepting,
        server,
    })
}

impl Running {
    /// Shuts down in a fixed order: stop accepting connections, let in-flight requests finish
    /// (at most `DRAIN_TIMEOUT`), then stop the actors.
    pub async fn shutdown(self) {
        let _ = self.stop_accepting.send(());
        let mut server = self.server;
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut server)
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests did not finish in {DRAIN_TIMEOUT:?}; closing them");
            server.abort();
        }
        self.engine.stop().await;
        tracing::info!("commerce-engine stopped");
    }
}

/// Runs the server until `shutdown` resolves, then shuts down in order.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let running = start(&settings).await?;
    shutdown.await;
    tracing::info!("shutdown requested");
    running.shutdown().await;
    Ok(())
}
