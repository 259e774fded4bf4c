//! SeaORM entities of runledger: one module per table, data only.
//!
//! Behaviour (validation, hashing, metadata) lives in the main crate's `facade`, `ingest` and
//! `ledger` modules; these structs only mirror the tables that the `migration` crate creates.
//! Evidence tables (`llm_runs`, `trace_steps`, `governance_events`, `system_records`,
//! `telemetry_samples`, `audit_ledger`, `ledger_checkpoints`) are append-only: the database
//! itself refuses UPDATE and DELETE on them.

pub mod api_keys;
pub mod audit_ledger;
pub mod export_jobs;
pub mod governance_events;
pub mod ledger_checkpoints;
pub mod llm_runs;
pub mod log_exports;
pub mod system_records;
pub mod telemetry_samples;
pub mod tenant_settings;
pub mod tenants;
pub mod trace_steps;
