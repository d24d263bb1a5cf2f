//! The kernel: the actors that own the state (one per user, product and coupon, plus the order
//! supervisor, the sales statistics and the data platform), the directory that finds or starts
//! them, the admission gate the audit closes, and the supervision that restores an entity whose
//! handler failed. Above storage (it appends to the journal) and
//! the domain (its actors run the domain's transitions); below the engine, which only sends it
//! commands. Actors and the directory reach each other both ways, so they are one layer.

pub mod actors;
pub mod directory;
pub mod gate;
pub mod supervision;
