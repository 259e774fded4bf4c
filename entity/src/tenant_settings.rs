//! A tenant's settings where they differ from the defaults (configuration, not evidence).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    /// Whether span content (prompts, completions, tool arguments and results) is kept.
    pub content_capture: bool,
    /// Largest kept content of one step, in bytes of canonical JSON.
    pub content_max_bytes: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
