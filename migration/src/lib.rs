//! SeaORM migrations of runledger. Every migration runs on SQLite and on PostgreSQL.
//!
//! The DDL is written out per backend on purpose: the evidence tables need triggers (which the
//! schema builder cannot express) and their indexes are the keyset-pagination keys the facade
//! relies on, so they are spelled out where a reviewer can see them.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_tables;
mod m20261126_000002_append_only;
mod m20261127_000003_anchor_links;
mod m20261128_000004_api_key_changes;
mod m20261201_000005_system_record_owner_keys;
mod m20261201_000006_protect_tenants_keys;
mod m20261202_000007_span_usage;
mod m20261202_000008_export_jobs;
mod m20261202_000009_partial_session_indexes;
mod m20261204_000010_run_rollups;
pub mod m20261205_000011_ledger_notify;
pub mod rollups;

/// The ordered list of migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_tables::Migration),
            Box::new(m20261126_000002_append_only::Migration),
            Box::new(m20261127_000003_anchor_links::Migration),
            Box::new(m20261128_000004_api_key_changes::Migration),
            Box::new(m20261201_000005_system_record_owner_keys::Migration),
            Box::new(m20261201_000006_protect_tenants_keys::Migration),
            Box::new(m20261202_000007_span_usage::Migration),
            Box::new(m20261202_000008_export_jobs::Migration),
            Box::new(m20261202_000009_partial_session_indexes::Migration),
            Box::new(m20261204_000010_run_rollups::Migration),
            Box::new(m20261205_000011_ledger_notify::Migration),
        ]
    }
}

/// Runs a list of SQL statements in order on the migration's connection.
async fn run_all(manager: &SchemaManager<'_>, statements: &[String]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}
