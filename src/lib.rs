//! webhook-ingest: receives HMAC-signed webhook messages, stores each exactly once in libSQL, and serves
//! list, search, stats, health and metrics endpoints.
//!
//! Everything happens in [`handler::handle`], a plain async function of a `lambda_http` request; `main`
//! only chooses the runtime that feeds it ([`lambda`], or with the `local` feature the HTTP listener in
//! `local`). Modules from the top down: runtimes → [`handler`] → endpoints ([`webhook`], [`endpoints`]) →
//! [`app`] → [`store`] → values.

pub mod app;
pub mod auth;
pub mod config;
pub mod cursor;
pub mod delivery;
pub mod endpoints;
pub mod error;
pub mod handler;
pub mod lambda;
pub mod message;
pub mod query;
pub mod routes;
pub mod signature;
pub mod status;
pub mod store;
pub mod strict_json;
pub mod telemetry;
pub mod transport;
pub mod ui;
pub mod webhook;
pub mod whatsapp;

#[cfg(feature = "local")]
pub mod local;
