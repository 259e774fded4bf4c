//! Signed checkpoints of a tenant's ledger tree (tree size, root hash, signed note).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_checkpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tree_size: i64,
    pub root_hash: String,
    /// The C2SP tlog-checkpoint signed note, verbatim.
    pub signed_note: String,
    pub key_id: String,
    pub recorded_at: DateTimeUtc,
    /// The Merkle frontier of the signed tree (perfect-subtree roots, left to right, as
    /// concatenated hex): lets verification resume from this checkpoint.
    pub frontier: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
