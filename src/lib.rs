//! commerce-engine: an actor-model, in-memory commerce engine. Every user, every product's
//! stock and every coupon is a ractor actor; an order supervisor keeps order deadlines; a warp
//! front exposes the HTTP API of `docs/spec.md`.
//!
//! One request walks down these files:
//!
//! ```text
//! HTTP request
//!   -> src/http/routes.rs      warp filters: method + path + body limit + JSON -> request type
//!   -> src/http/handlers.rs    request type -> one Engine call -> reply (no business logic here)
//!   -> src/engine/             Engine: the one cloneable handle; one async fn per use case
//!   -> src/directory.rs        the entity's actor, started from its passive state if need be
//!   -> src/actors/*.rs         one actor per user / product stock / coupon; order supervisor
//!   -> pure state methods      plain synchronous fns on the actor's state, unit-tested directly
//!   -> src/journal/            each change appended as a record; the reply waits for its fsync
//!   -> src/snapshot/           the journal's replica -> versioned model -> bincode -> tmp, fsync, rename
//! Errors flow back: domain error enums (each knows its Code) -> EngineError (wraps them) ->
//! src/http/error.rs (the only place that maps a Code to an HTTP status) -> {"code","message"}
//! ```
//!
//! Consistency across actors comes from the admission gate (`src/gate.rs`); the invariants it
//! protects are checked by `src/audit.rs`.

pub mod actors;
pub mod app;
pub mod archive;

pub mod audit;
pub mod clock;
pub mod codec;
pub mod config;
pub mod directory;
pub mod engine;
pub mod error;
pub mod gate;
pub mod http;
pub mod journal;
pub mod metrics;

pub mod model;
pub mod seed;
pub mod snapshot;
pub mod state;

pub use engine::{Engine, EngineConfig};
pub use error::EngineError;
