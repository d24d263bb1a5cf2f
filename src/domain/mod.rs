//! The domain: each entity's state (a user, a product's stock, a coupon, the sales statistics,
//! the data platform's queue) with its transitions as plain synchronous methods, the errors a
//! client can meet, and `EngineState`, the whole engine as plain data with `apply`, the one
//! replay of a journal record. A leaf layer above `model`, `clock`, `code` and `wire`: it knows
//! no actor, no runtime and no file.

pub mod coupon;
pub mod data_platform;
pub mod encoding;
pub mod product;
pub mod sales;
pub mod state;
pub mod user;

pub use state::{EngineState, IdCounters};
