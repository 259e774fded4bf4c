//! Compliance exports. The only evidence-side rows that change, and only forward:
//! `PENDING` → `COMPLETED` | `FAILED` (enforced by a trigger).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "log_exports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The run exported, when the scope is one run.
    pub run_id: Option<String>,
    pub scope: String,
    pub format: String,
    pub requested_by: String,
    pub status: String,
    /// Hex SHA-256 of the delivered bundle.
    pub checksum: Option<String>,
    pub requested_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
