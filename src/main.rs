//! The `commerce-engine` server binary: parse flags, load settings, start tracing, run until
//! SIGINT or SIGTERM. Everything else lives in the library (`app::run`).

use std::path::PathBuf;

use clap::Parser;

/// mimalloc: glibc's malloc was a quarter of the simulator's cycles under perf (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use commerce_engine::app;
use commerce_engine::config::{LogFormat, Settings};

/// An actor-model, in-memory commerce engine with an HTTP API.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Settings file (default: config/default.toml). COMMERCE__SECTION__KEY variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Start from the seed when snapshot files exist but none of them is readable (they are
    /// left in place). Without it the server refuses to start over them.
    #[arg(long)]
    ignore_unreadable_snapshots: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings::load(args.config.as_deref()).map_err(anyhow::Error::msg)?;
    init_tracing(settings.log.format);
    let options = app::StartOptions {
        ignore_unreadable_snapshots: args.ignore_unreadable_snapshots,
    };
    app::run(settings, options, shutdown_signal()).await?;
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler cannot fail on unix");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}
