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
//!   -> src/kernel/directory.rs the entity's actor, started from its passive state if need be
//!   -> src/kernel/actors/*.rs  one actor per user / product stock / coupon; order supervisor
//!   -> src/domain/*.rs         the entity's state and its transitions, unit-tested directly
//!   -> src/journal/            each change appended as a record; the reply waits for its fsync
//!   -> src/snapshot/           the journal's replica -> versioned model -> bincode -> tmp, fsync, rename
//! Errors flow back: domain error enums (each knows its Code) -> EngineError (wraps them) ->
//! src/http/error.rs (the only place that maps a Code to an HTTP status) -> {"code","message"}
//! ```
//!
//! Consistency across actors comes from the admission gate (`src/kernel/gate.rs`); the
//! invariants it protects are checked by `src/audit.rs`. A handler that panics or fails does
//! not take its entity down: it is restored from the journal (`src/kernel/supervision.rs`).
//!
//! # Layers
//!
//! The modules form a DAG, each naming only modules below it (`tests/module_graph.rs` fails on
//! a cycle):
//!
//! ```text
//! main, app                 wiring: settings -> storage -> engine -> HTTP
//! http                      routes, handlers, wire types, Code -> status
//! engine                    use cases: one async fn each; sends commands, holds no entity state
//! kernel                    actors, directory, gate, supervision (actors and directory are
//!                           one layer)
//! journal, snapshot,        storage: records and states in, files out; no actor, no engine
//!   archive, store
//! error, audit, seed        EngineError; invariant checks; the seed file -> EngineState
//! domain                    entity states, transitions, domain errors, EngineState + apply
//! wire                      on-disk types: journal records, snapshot bodies
//! model, code, clock,       leaves: ids and orders, error codes, time, bincode, settings
//!   codec, config, metrics  (plain data), the metrics registry
//! ```

//! # Owners
//!
//! Every piece of mutable state has one writer. Others read what it publishes or ask it.
//!
//! | participant | owns (the only writer of) | talks to | stops when |
//! |---|---|---|---|
//! | HTTP handler + `Engine` use case | nothing; a command's gate admission until it hands it on | the directory, one actor per command (it awaits that reply) | the request ends |
//! | user actor (the buyer) | balance, held coupons, orders and their status, its pending-order slots (a counter its directory entry keeps for it), its rows of the order -> buyer index, its placements in flight | products (the placement chain, commits, the release chain), the order supervisor (arm, disarm), sales, data platform, the archivist (ended orders) | idle for `passivation.after` (its state goes back to the directory), or the engine stops |
//! | product actor | stock per option (available, reserved, sold), reservations by order, purchase-limit counts, its stock board | the next product or the buyer (a placement or releases passed on) | idle, or the engine stops |
//! | coupon actor | remaining quantity and holders | the holder's user actor (the issued coupon) | idle, or the engine stops |
//! | order supervisor | the deadlines of PENDING orders | buyers (an expiry hint, through the gate) | the engine stops |
//! | sales actor | the daily sales statistics | nobody | the engine stops |
//! | data-platform actor | paid orders not yet acknowledged by the sink | the sink | the engine stops |
//! | directory | where each entity is (its actor, or its passive state); activation and passivation | actors (starts and stops them) | the engine stops |
//! | `Engine` ids | the id counters (order ids in recorded blocks) | the journal | the engine stops |
//! | journal writer thread | the journal's segments, the durable position, replies held for durability | reply ports (it sends them), the checkpointer | the journal closes |
//! | checkpointer thread | the replica of the state, the entity store, snapshot files | nobody (it answers flush and snapshot requests and reads of the replica: a failed entity's restore) | the journal closes |
//! | archivist task | the archive store | buyers (which ended orders moved) | the engine stops |
//!
//! A multi-entity change is a chain of messages in which each owner changes its own state and
//! passes the rest on; nobody waits inside a handler for another actor's reply
//! (`src/kernel/actors/user.rs`).

pub mod app;
pub mod archive;

pub mod audit;
pub mod clock;
pub mod code;
pub mod codec;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod http;
pub mod journal;
pub mod kernel;
pub mod metrics;

pub mod model;
pub mod seed;
pub mod snapshot;
pub mod store;
pub mod wire;

pub use engine::{Engine, EngineConfig};
pub use error::EngineError;
