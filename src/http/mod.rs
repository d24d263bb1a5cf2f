//! The HTTP front (warp): routes, handlers, request/response types and the one error mapping.

pub mod auth;
pub mod error;
pub mod handlers;
pub mod openapi;
pub mod query;
pub mod route_table;
pub mod routes;
pub mod server;
pub mod types;

pub use auth::BuyerAuth;
pub use routes::{RouteOptions, routes};
pub use server::{ServerOptions, serve};
