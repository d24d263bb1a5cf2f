//! The wire formats: what is written to disk and must keep decoding forever. Journal records
//! (`record.rs`) and snapshot bodies (`snapshot.rs`) are plain numbers and versioned types,
//! never domain state, so refactoring an entity never breaks an old file. A leaf layer above
//! `model` and `clock`; the domain converts its states to and from these types
//! (`src/domain/encoding.rs`).

pub mod record;
pub mod snapshot;

pub use record::Record;
