//! What a simulation measured: latency samples and outcome counts per kind of operation,
//! turned at the end into HDR histograms and the report of docs/spec.md §7.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

use commerce_engine::audit::Check;

/// The kinds of operation a buyer performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Browse,
    Charge,
    IssueCoupon,
    Order,
    Pay,
    Cancel,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Browse,
        Kind::Charge,
        Kind::IssueCoupon,
        Kind::Order,
        Kind::Pay,
        Kind::Cancel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Browse => "browse",
            Kind::Charge => "charge",
            Kind::IssueCoupon => "issue_coupon",
            Kind::Order => "order",
            Kind::Pay => "pay",
            Kind::Cancel => "cancel",
        }
    }
}

/// One buyer's measurements; merged into one at the end. Samples are plain vectors (4 bytes
/// each) rather than a histogram per buyer, which with 10,000 buyers would cost far more.
#[derive(Default)]
pub struct Samples {
    latencies_us: BTreeMap<Kind, Vec<u32>>,
    outcomes: BTreeMap<Kind, BTreeMap<String, u64>>,
}

impl Samples {
    pub fn record(&mut self, kind: Kind, latency: Duration, error: Option<&str>) {
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.latencies_us.entry(kind).or_default().push(micros);
        let code = error.unwrap_or("success");
        let counts = self.outcomes.entry(kind).or_default();
        // Look up before inserting: the steady state allocates nothing.
        match counts.get_mut(code) {
            Some(count) => *count += 1,
            None => drop(counts.insert(code.to_string(), 1)),
        }
    }

    pub fn merge(&mut self, other: Samples) {
        for (kind, samples) in other.latencies_us {
            self.latencies_us.entry(kind).or_default().extend(samples);
        }
        for (kind, counts) in other.outcomes {
            let mine = self.outcomes.entry(kind).or_default();
            for (code, count) in counts {
                *mine.entry(code).or_default() += count;
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.outcomes.values().flat_map(BTreeMap::values).sum()
    }
}

/// One line of the latency table.
#[derive(Clone, Debug, PartialEq)]
pub struct KindLine {
    pub kind: &'static str,
    pub count: u64,
    pub per_second: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub scenario: &'static str,
    pub mode: String,
    pub buyers: usize,
    pub elapsed: Duration,
    pub operations: u64,
    pub kinds: Vec<KindLine>,
    /// (kind, outcome code, count).
    pub outcomes: Vec<(&'static str, String, u64)>,
    /// The buyers' own audit, then (prefixed `engine:`) the engine's audit.
    pub checks: Vec<Check>,
    pub ok: bool,
    pub rerun: String,
}

impl Report {
    /// Every operation, successful or refused, per second: never the headline.
    pub fn operations_per_second(&self) -> f64 {
        self.per_second(self.operations)
    }

    fn per_second(&self, count: u64) -> f64 {
        count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// How many operations of `kind` succeeded.
    pub fn successes(&self, kind: Kind) -> u64 {
        self.outcomes
            .iter()
            .filter(|(name, code, _)| *name == kind.name() && code == "success")
            .map(|(_, _, count)| count)
            .sum()
    }

    /// Successful operations of `kind` per second: the goodput.
    pub fn goodput(&self, kind: Kind) -> f64 {
        self.per_second(self.successes(kind))
    }

    /// Operations the shop refused (any outcome but success).
    pub fn refusals(&self) -> u64 {
        self.outcomes
            .iter()
            .filter(|(_, code, _)| code != "success")
            .map(|(_, _, count)| count)
            .sum()
    }

    /// The report as one JSON document (docs/spec.md §7), goodput first; refusals counted
    /// apart.
    pub fn to_json(&self) -> serde_json::Value {
        let operations: serde_json::Map<String, serde_json::Value> = self
            .kinds
            .iter()
            .map(|line| {
                let numbers = serde_json::json!({
                    "count": line.count,
                    "per_s": line.per_second.round(),
                    "p50_us": line.p50_us,
                    "p90_us": line.p90_us,
                    "p99_us": line.p99_us,
                    "max_us": line.max_us,
                });
                (line.kind.to_string(), numbers)
            })
            .collect();
        let mut outcomes = serde_json::Map::new();
        for (kind, code, count) in &self.outcomes {
            let by_code = outcomes
                .entry(kind.to_string())
                .or_insert_with(|| serde_json::json!({}));
            by_code[code.as_str()] = (*count).into();
        }
        serde_json::json!({
            "seed": self.seed,
            "mode": self.mode,
            "scenario": self.scenario,
            "buyers": self.buyers,
            "duration_s": self.elapsed.as_secs_f64(),
            "goodput": {
                "orders_per_s": self.goodput(Kind::Order).round(),
                "payments_per_s": self.goodput(Kind::Pay).round(),
            },
            "refusals": self.refusals(),
            "operations": operations,
            "outcomes": outcomes,
            "invariants": self.checks.iter().map(|check| serde_json::json!({
                "name": check.name,
                "ok": check.ok,
                "detail": check.detail,
            })).collect::<Vec<_>>(),
            "ok": self.ok,
            "rerun": self.rerun,
        })
    }

    /// The report of a run: `samples` become HDR histograms and outcome counts.
    pub fn new(run: RunInfo, samples: Samples, elapsed: Duration, checks: Vec<Check>) -> Report {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let operations = samples.total();
        let mut kinds = Vec::new();
        for kind in Kind::ALL {
            let Some(latencies) = samples.latencies_us.get(&kind) else {
                continue;
            };
            // Bounded (1 us to 1 hour) rather than auto-resizing: `saturating_record` on an
            // auto-resizing histogram clamps at its initial range instead of growing.
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
            for &micros in latencies {
                histogram.saturating_record(u64::from(micros));
            }
            kinds.push(KindLine {
                kind: kind.name(),
                count: histogram.len(),
                per_second: histogram.len() as f64 / seconds,
                p50_us: histogram.value_at_quantile(0.50),
                p90_us: histogram.value_at_quantile(0.90),
                p99_us: histogram.value_at_quantile(0.99),
                max_us: histogram.max(),
            });
        }
        let outcomes = samples
            .outcomes
            .into_iter()
            .flat_map(|(kind, counts)| {
                counts
                    .into_iter()
                    .map(move |(code, count)| (kind.name(), code, count))
            })
            .collect();
        Report {
            seed: run.seed,
            scenario: run.scenario,
            mode: run.mode,
            buyers: run.buyers,
            elapsed,
            operations,
            kinds,
            outcomes,
            ok: checks.iter().all(|check| check.ok),
            checks,
            rerun: run.rerun,
        }
    }
}

/// What identifies a run in its report.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub seed: u64,
    pub scenario: &'static str,
    pub mode: String,
    pub buyers: usize,
    pub rerun: String,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\n== simulation: {} scenario, {} mode, {} buyers, seed {} ==",
            self.scenario, self.mode, self.buyers, self.seed
        )?;
        writeln!(
            f,
            "goodput: {:.0} orders/s placed, {:.0} payments/s (order-and-pay flows), \
             {:.0} charges/s, {:.0} coupons/s issued",
            self.goodput(Kind::Order),
            self.goodput(Kind::Pay),
            self.goodput(Kind::Charge),
            self.goodput(Kind::IssueCoupon)
        )?;
        let refused = self.refusals();
        writeln!(
            f,
            "refused: {refused} of {} operations ({:.1}%), by code below",
            self.operations,
            100.0 * refused as f64 / self.operations.max(1) as f64
        )?;
        writeln!(
            f,
            "all operations, successful or not: {} in {:.2} s ({:.0}/s)",
            self.operations,
            self.elapsed.as_secs_f64(),
            self.operations_per_second()
        )?;
        writeln!(
            f,
            "\n{:<14}{:>10}{:>12}{:>10}{:>10}{:>10}{:>12}",
            "kind", "count", "ops/s", "p50 us", "p90 us", "p99 us", "max us"
        )?;
        for line in &self.kinds {
            writeln!(
                f,
                "{:<14}{:>10}{:>12.0}{:>10}{:>10}{:>10}{:>12}",
                line.kind,
                line.count,
                line.per_second,
                line.p50_us,
                line.p90_us,
                line.p99_us,
                line.max_us
            )?;
        }
        writeln!(f, "\noutcomes:")?;
        for (kind, code, count) in &self.outcomes {
            writeln!(f, "  {kind:<14}{code:<26}{count:>10}")?;
        }
        writeln!(f, "\ninvariants:")?;
        for check in &self.checks {
            writeln!(
                f,
                "  [{}] {:<26}{}",
                if check.ok { " ok " } else { "FAIL" },
                check.name,
                check.detail
            )?;
        }
        writeln!(
            f,
            "\n{}",
            if self.ok {
                "ALL INVARIANTS HOLD"
            } else {
                "INVARIANT VIOLATED"
            }
        )?;
        writeln!(f, "rerun: {}", self.rerun)
    }
}
