//! Time for the whole engine: one `Clock` that every timestamp and deadline comes from.
//!
//! Wall-clock time is derived from tokio's clock (`origin_wall + elapsed since origin`), so a
//! test that pauses and advances tokio's clock moves order deadlines, coupon expiries and the
//! "today" of the popular ranking together with the expiry timers. In production the two only
//! differ by the drift of the monotonic clock, which is what we want for deadlines anyway.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds in one UTC calendar day.
const DAY_MS: u64 = 86_400_000;

/// A point in time: milliseconds since the Unix epoch, UTC. Serialized as an RFC 3339 string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The UTC calendar day number (days since 1970-01-01).
    pub fn day(self) -> u64 {
        self.0 / DAY_MS
    }

    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }

    /// Parses an RFC 3339 timestamp such as `2026-12-31T23:59:59Z`.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let time = humantime::parse_rfc3339_weak(text).ok()?;
        let millis = time.duration_since(UNIX_EPOCH).ok()?.as_millis();
        u64::try_from(millis).ok().map(Timestamp)
    }

    fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}",
            humantime::format_rfc3339_millis(self.to_system_time())
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not an RFC 3339 UTC timestamp"))
        })
    }
}

/// In the API description: an RFC 3339 date-time string.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .examples([serde_json::json!("2026-11-24T12:00:00.000Z")])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

/// The engine's clock. Cheap to copy; all copies agree.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin_wall: Timestamp,
    origin: tokio::time::Instant,
}

impl Clock {
    /// A clock anchored at the real wall-clock time now.
    pub fn system() -> Clock {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as u64)
            .unwrap_or(0);
        Clock::starting_at(Timestamp(millis))
    }

    /// A clock that reads `start` now and advances with tokio's clock (tests use this).
    pub fn starting_at(start: Timestamp) -> Clock {
        Clock {
            origin_wall: start,
            origin: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.origin_wall.saturating_add(self.origin.elapsed())
    }

    /// The tokio instant at which `at` is reached (now, if it is already past).
    pub fn instant_at(&self, at: Timestamp) -> tokio::time::Instant {
        let now = self.now();
        tokio::time::Instant::now() + Duration::from_millis(at.0.saturating_sub(now.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let stamp = Timestamp::parse("2026-11-24T10:30:00Z").unwrap();
        assert_eq!(stamp.to_string(), "2026-11-24T10:30:00.000Z");
        assert_eq!(Timestamp::parse(&stamp.to_string()), Some(stamp));
        assert_eq!(Timestamp::parse("yesterday"), None);
    }

    #[test]
    fn day_numbers_split_at_utc_midnight() {
        let before = Timestamp::parse("2026-11-24T23:59:59Z").unwrap();
        let after = Timestamp::parse("2026-11-25T00:00:00Z").unwrap();
        assert_eq!(before.day() + 1, after.day());
    }

    #[tokio::test(start_paused = true)]
    async fn wall_time_follows_the_paused_tokio_clock() {
        let clock = Clock::starting_at(Timestamp(1_000));
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(clock.now(), Timestamp(601_000));
    }
}
