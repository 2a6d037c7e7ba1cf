//! The integration tests, as one test binary: each file here was once its
//! own `tests/X.rs` crate and is now the module `X`, with the fixtures they
//! share in `common`. One binary links the whole program once, instead of
//! once per file.
//!
//! The tests share one process and run on parallel threads, so anything
//! process-wide must be safe for that: the crash test's panic hook speaks
//! only for its own thread (`crash.rs`), and each power-cut VFS registers
//! under a name of its own (`common/powercut.rs`). No test sets environment
//! variables or changes the working directory.
//!
//! One file's tests: `cargo test --test it crash::` (a name filter; for
//! `usage::` add `-- --skip cli_usage::`, which it also matches).

mod common;

mod access;
mod accounts;
mod addresses;
mod alert_delivery;
mod alert_email;
mod alert_worker;
mod architecture;
mod audit;
mod backup;
mod binary;
mod browser;
mod budget_alerts;
mod catalogue;
mod catalogue_upgrade;
mod claude_models;
mod cli_budget;
mod cli_team;
mod cli_token;
mod cli_usage;
mod connect;
mod crash;
mod db;
mod disk;
mod durability;
mod edge;
mod fuzz_corpus;
mod hostile;
mod http;
mod identities;
mod identity_cli;
mod identity_ignore;
mod identity_members;
mod identity_page;
mod identity_privacy;
mod identity_sdk;
mod identity_store;
mod import;
mod ingest;
mod litellm;
mod load;
mod metrics_usage;
mod openapi;
mod operations;
mod otlp;
mod otlp_exporter;
mod pages;
mod price_parts;
mod price_sync;
mod prices;
mod prices_page;
mod reported_cost;
mod summary;
mod team_access;
mod team_page_bounds;
mod team_pages;
mod team_reads;
mod team_store;
mod unassigned;
mod unit;
mod unit_settings;
mod unusual;
mod upgrade;
mod usage;
