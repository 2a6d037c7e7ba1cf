//! tokentally: a self-hosted dashboard of LLM token usage and cost.
//!
//! The binary (`src/main.rs`) only parses the command line and hands it to
//! [`cli::run`]; everything else lives here so tests drive the real app.
//! One module per capability, each with its own `routes()`, merged once in
//! [`app::router`].

pub mod alerts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod budgets;
pub mod build_info;
pub mod cli;
pub mod clock;
pub mod db;
pub mod demo;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod import;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod observe;
pub mod openapi;
pub mod secret;
pub mod server;
pub mod teams;
pub mod usage;
pub mod web;
