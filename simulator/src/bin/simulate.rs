//! `simulate`: thousands of concurrent buyers against the engine, in this process or over
//! HTTP, ending with a report and an invariant audit. Exits non-zero if any invariant fails.
//! The harness itself is this crate's library (`commerce_simulator`).

use std::time::Duration;

use clap::Parser;

/// mimalloc: glibc's malloc was a quarter of the simulator's cycles under perf (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use commerce_simulator::{Options, Scenario};

/// Plays many concurrent buyers (charge, browse, race for coupons, order, pay, cancel, abandon)
/// and checks that nothing was oversold, double-issued or lost.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// What buyers face: flash-sale (scarce stock and coupons; most attempts are refused) or
    /// steady (ample stock and balances; buyers order and pay). Over HTTP the catalog is the
    /// server's; the scenario sets the buyers' mix.
    #[arg(long, value_enum, default_value_t = Scenario::FlashSale)]
    scenario: Scenario,
    /// Concurrent buyers.
    #[arg(long, default_value_t = 1_000)]
    buyers: usize,
    /// How long buyers shop, e.g. 10s, 1m.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Random seed of the buyers' choices (and of the embedded catalog). Random if absent; always printed.
    #[arg(long)]
    seed: Option<u64>,
    /// A running server, e.g. http://127.0.0.1:8080. Without it an engine runs in this process.
    #[arg(long, value_name = "URL")]
    target: Option<String>,
    /// Admin token of the target server, to cross-check with its GET /admin/audit.
    #[arg(long, env = "COMMERCE__ADMIN__TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// HS256 secret of a target running `auth.mode = "jwt"`: each buyer's requests carry a
    /// token whose `sub` is its user.
    #[arg(long, env = "COMMERCE__AUTH__JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Users 1..=N: the embedded catalog's users; in HTTP mode the users buyers act as.
    /// Default: one per buyer in the steady scenario (a buyer never waits on another's pending
    /// orders), 1,000 in the flash sale.
    #[arg(long)]
    users: Option<u64>,
    /// Products in the embedded catalog.
    #[arg(long, default_value_t = 100)]
    products: u64,
    /// Coupons in the embedded catalog; in HTTP mode coupon ids 1..=N are tried.
    #[arg(long, default_value_t = 10)]
    coupons: u64,
    /// Order expiry of the embedded engine (short, so that abandoned orders expire during the run).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    expiry: Duration,
    /// Stop each buyer after about N operations (its last step may add up to three) instead of at the end of --duration.
    #[arg(long, value_name = "N")]
    operations_per_buyer: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Also write the report as JSON (goodput first; docs/spec.md §7) to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let options = Options {
        scenario: args.scenario,
        buyers: args.buyers,
        duration: args.duration,
        seed: args.seed,
        target: args.target,
        admin_token: args.admin_token.filter(|token| !token.is_empty()),
        jwt_secret: args.jwt_secret.filter(|secret| !secret.is_empty()),
        users: args.users.unwrap_or(match args.scenario {
            Scenario::Steady => args.buyers as u64,
            Scenario::FlashSale => 1_000,
        }),
        products: args.products,
        coupons: args.coupons,
        expiry: args.expiry,
        operations_per_buyer: args.operations_per_buyer,
        progress: !args.quiet,
    };
    let report = commerce_simulator::run(&options)
        .await
        .map_err(anyhow::Error::msg)?;
    print!("{report}");
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report.to_json())?;
        std::fs::write(path, json + "\n")
            .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", path.display()))?;
    }
    if !report.ok {
        std::process::exit(1);
    }
    Ok(())
}
