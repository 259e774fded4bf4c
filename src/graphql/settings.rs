//! GraphQL surface of the tenant's settings: content capture of spans (read by any evidence
//! reader, changed by an `admin` key).

use async_graphql::{Context, Object, Result};

use super::common::facade;
use crate::ingest::otlp::ContentPolicy;

/// What the tenant keeps of span content (prompts, completions, system instructions, tool
/// arguments and results). The SHA-256 digest of a span's content is kept either way.
pub struct ContentCapture(ContentPolicy);

#[Object]
impl ContentCapture {
    /// Whether content is kept (off by default).
    async fn enabled(&self) -> bool {
        self.0.capture
    }
    /// Largest kept content of one step, in bytes of canonical JSON: beyond it, values are cut
    /// with a marker and the payload's `truncated` member says what was left out.
    async fn max_bytes(&self) -> i64 {
        self.0.max_bytes as i64
    }
}

#[derive(Default)]
pub struct SettingsQuery;

#[Object]
impl SettingsQuery {
    /// The tenant's content capture setting.
    async fn content_capture(&self, ctx: &Context<'_>) -> Result<ContentCapture> {
        Ok(ContentCapture(facade(ctx)?.content_capture().await?))
    }
}

#[derive(Default)]
pub struct SettingsMutation;

#[Object]
impl SettingsMutation {
    /// Turns content capture on or off for spans ingested from now on (role `admin`); recorded
    /// in the tenant's ledger as TENANT_SETTINGS_CHANGED.
    async fn set_content_capture(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Keep span content from now on.")] enabled: bool,
        #[graphql(
            desc = "Largest kept content of one step, 256 to 1048576 bytes (default: unchanged, initially 32768)."
        )]
        max_bytes: Option<i64>,
    ) -> Result<ContentCapture> {
        Ok(ContentCapture(
            facade(ctx)?.set_content_capture(enabled, max_bytes).await?,
        ))
    }
}
