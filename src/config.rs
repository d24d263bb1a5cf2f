//! Settings (docs/spec.md §3): `config/default.toml` or `--config PATH`, then environment
//! overrides `COMMERCE__SECTION__KEY`, validated once at start-up so a bad value is a clear
//! message instead of a surprise under load. Every key has the spec's default.
//!
//! Plain data, a leaf of the module graph: each layer converts the section it uses where it
//! uses it (`JournalOptions::from_settings`, `Passivation::from`, `Sink::from_settings`,
//! `BuyerAuth::from_settings`, `ServerOptions::from`), and `app::start` makes every
//! conversion before it opens anything, so a bad value is still a start error.
//!
//! One TOML parser reads both files: the `config` crate (layering and the environment) parses
//! through the same `toml` crate the seed is read with (`src/seed.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub snapshot: SnapshotSettings,
    pub order: OrderSettings,
    pub limits: Limits,
    pub seed: SeedSettings,
    pub admin: AdminSettings,
    pub data_platform: DataPlatformSettings,
    pub log: LogSettings,
    pub journal: JournalSettings,
    pub auth: AuthSettings,
    pub actors: ActorSettings,
    pub metrics: MetricsSettings,
}

/// When entity actors stop (docs/spec.md §3; `src/kernel/directory/residence.rs`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ActorSettings {
    /// An actor with no message for this long stops; `"0s"`: after every message.
    #[serde(with = "humantime_serde")]
    pub passivate_after: Duration,
    /// At most this many user, product and coupon actors run at once; above it the least
    /// recently used stop, idle or not.
    pub max_running: usize,
}

/// `metrics.enabled` (docs/spec.md §3): whether `GET /metrics` is served.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    pub enabled: bool,
}

impl Default for ActorSettings {
    fn default() -> Self {
        ActorSettings {
            passivate_after: Duration::from_secs(120),
            max_running: 250_000,
        }
    }
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings { enabled: true }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub addr: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub body_limit: u64,
    /// Close a connection after this long without a byte either way.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Close a connection whose request head is incomplete this long after it began.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotSettings {
    pub dir: PathBuf,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    pub keep: usize,
}

/// When the journal fsyncs (`journal.fsync`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Before any reply that depends on the change.
    #[default]
    Always,
    /// Every `journal.fsync_interval`.
    Interval,
    /// Never; left to the OS.
    Off,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JournalSettings {
    pub fsync: FsyncPolicy,
    #[serde(with = "humantime_serde")]
    pub fsync_interval: Duration,
    /// A new segment file starts once the current one is this large.
    pub segment_bytes: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OrderSettings {
    /// How long an unpaid order holds its stock.
    #[serde(with = "humantime_serde")]
    pub expiry: Duration,
    /// How long after it ended (PAID, EXPIRED, CANCELLED) an order moves to the archive.
    #[serde(with = "humantime_serde")]
    pub archive_after: Duration,
}

/// Limits on what one request may do. Money in won.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_charge: u64,
    pub max_balance: u64,
    pub max_order_items: usize,
    pub max_item_quantity: u64,
    /// PENDING orders one user may hold at once.
    pub max_pending_orders_per_user: u64,
    /// The largest coupon quantity an admin may create.
    pub max_coupon_quantity: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SeedSettings {
    pub path: PathBuf,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Bearer token of the admin API; empty disables it.
    pub token: String,
}

/// Who may act as a buyer (see `http::auth`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// The user id in the request is trusted (a gateway authenticated the buyer).
    #[default]
    None,
    /// Buyer routes need a bearer JWT whose `sub` is the user id.
    Jwt,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// HS256 key.
    pub jwt_secret: String,
    /// PEM public key (RS256 or EdDSA).
    pub jwt_public_key_path: String,
    /// Required `iss` when not empty.
    pub issuer: String,
    /// Required `aud` when not empty.
    pub audience: String,
    /// Clock leeway for `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    #[default]
    Log,
    File,
    Http,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataPlatformSettings {
    pub sink: SinkKind,
    /// JSON-lines file of the `file` sink.
    pub path: Option<PathBuf>,
    /// Endpoint of the `http` sink.
    pub url: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit: 16_384,
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            mode: AuthMode::None,
            jwt_secret: String::new(),
            jwt_public_key_path: String::new(),
            issuer: String::new(),
            audience: String::new(),
            leeway: Duration::from_secs(30),
        }
    }
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings {
            dir: PathBuf::from("snapshots"),
            interval: Duration::from_secs(30),
            keep: 5,
        }
    }
}

impl Default for JournalSettings {
    fn default() -> Self {
        JournalSettings {
            fsync: FsyncPolicy::Always,
            fsync_interval: Duration::from_secs(1),
            segment_bytes: 64 << 20,
        }
    }
}

impl Default for OrderSettings {
    fn default() -> Self {
        OrderSettings {
            expiry: Duration::from_secs(600),
            archive_after: Duration::from_secs(60),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_charge: 1_000_000,
            max_balance: 100_000_000,
            max_order_items: 50,
            max_item_quantity: 1_000,
            max_pending_orders_per_user: 5,
            max_coupon_quantity: 10_000_000,
        }
    }
}

impl Default for SeedSettings {
    fn default() -> Self {
        SeedSettings {
            path: PathBuf::from("config/seed.toml"),
        }
    }
}

/// The longest duration a setting may hold: deadlines computed from it stay far inside the
/// years a timestamp can be written in (RFC 3339 stops at 9999).
const MAX_DURATION: Duration = Duration::from_secs(3_155_760_000); // humantime's "100y"

/// The file read when no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

impl Settings {
    /// Reads `path` (or the default file, if present) and the environment, then validates.
    pub fn load(path: Option<&Path>) -> Result<Settings, String> {
        let file = match path {
            Some(path) => config::File::from(path).required(true),
            None => config::File::with_name(DEFAULT_CONFIG_PATH).required(false),
        };
        let settings: Settings = config::Config::builder()
            .add_source(file)
            .add_source(
                config::Environment::with_prefix("COMMERCE")
                    .prefix_separator("__")
                    .separator("__"),
            )
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|error| format!("invalid configuration: {error}"))?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                self.server.body_limit > 0,
                "server.body_limit must be positive",
            ),
            (
                !self.server.idle_timeout.is_zero(),
                "server.idle_timeout must be positive",
            ),
            (
                !self.server.header_timeout.is_zero(),
                "server.header_timeout must be positive",
            ),
            (
                !self.snapshot.interval.is_zero(),
                "snapshot.interval must be positive",
            ),
            (self.snapshot.keep >= 1, "snapshot.keep must be at least 1"),
            (
                !self.order.expiry.is_zero(),
                "order.expiry must be positive",
            ),
            (
                self.order.expiry <= MAX_DURATION,
                "order.expiry must be at most 100 years (deadlines must stay representable)",
            ),
            (
                self.actors.passivate_after <= MAX_DURATION,
                "actors.passivate_after must be at most 100 years",
            ),
            (
                self.actors.max_running >= 1,
                "actors.max_running must be at least 1",
            ),
            (
                !self.order.archive_after.is_zero(),
                "order.archive_after must be positive",
            ),
            (
                self.order.archive_after <= MAX_DURATION,
                "order.archive_after must be at most 100 years",
            ),
            (
                !self.journal.fsync_interval.is_zero(),
                "journal.fsync_interval must be positive",
            ),
            (
                self.journal.segment_bytes >= 4096,
                "journal.segment_bytes must be at least 4096",
            ),
            (
                self.limits.max_pending_orders_per_user > 0,
                "limits.max_pending_orders_per_user must be positive",
            ),
            (
                self.limits.max_coupon_quantity > 0,
                "limits.max_coupon_quantity must be positive",
            ),
            (
                self.limits.max_charge > 0,
                "limits.max_charge must be positive",
            ),
            (
                self.limits.max_balance > 0,
                "limits.max_balance must be positive",
            ),
            (
                self.limits.max_order_items > 0,
                "limits.max_order_items must be positive",
            ),
            (
                self.limits.max_item_quantity > 0,
                "limits.max_item_quantity must be positive",
            ),
        ];
        if let Some((_, message)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(format!("invalid configuration: {message}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_default_file_matches_the_spec_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH);
        let text = std::fs::read_to_string(path).unwrap();
        let settings: Settings = toml::from_str(&text).unwrap();
        assert_eq!(settings, Settings::default());
    }

    #[test]
    fn durations_are_human_readable() {
        let settings: Settings = toml::from_str("[order]\nexpiry = \"1500ms\"").unwrap();
        assert_eq!(settings.order.expiry, Duration::from_millis(1500));
        assert!(toml::from_str::<Settings>("[order]\nexpiry = \"soon\"").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Settings>("[server]\nport = 80").is_err());
    }

    #[test]
    fn an_expiry_that_makes_deadlines_unrepresentable_is_rejected() {
        let mut settings = Settings::default();
        settings.order.expiry = humantime::parse_duration("8000y").unwrap();
        assert!(settings.validate().unwrap_err().contains("order.expiry"));
        settings.order.expiry = humantime::parse_duration("100y").unwrap();
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn zero_limits_are_rejected() {
        let mut settings = Settings::default();
        settings.limits.max_order_items = 0;
        assert!(settings.validate().unwrap_err().contains("max_order_items"));
    }
}
