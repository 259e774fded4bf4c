//! The facade's live subscriptions: each authorizes like its list, records its start (durable
//! before its first event, by the transport), notes every delivery in the subscription's
//! facade (committed per interval, grouped as `EVIDENCE_READ` entries that name the
//! subscription), and yields items with their cursors.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use super::cursor::{LiveCursor, Mark};
use super::feed::{Batch, Wants};
use super::{Hub, tail};
use crate::auth::Permission;
use crate::canonical::micros;
use crate::error::{AppError, AppResult, Context};
use crate::facade::Facade;
use crate::facade::audit::AuditFilter;
use crate::facade::decode::{AuditColumns, Projected, StepColumns};
use crate::facade::runs::RunFilter;
use crate::facade::shared::Shared;
use crate::facade::system::SystemFilter;
use crate::ledger::PLATFORM_LEDGER;
use crate::ledger::vocabulary::{self, EntityType, SubscriptionRecord};
use entity::{audit_ledger, export_jobs, llm_runs, log_exports, system_records, trace_steps};

/// One delivered item and the cursor to resume after it.
pub struct LiveEvent<T> {
    pub cursor: String,
    pub item: T,
}

/// An export's state as its progress subscription reports it.
pub struct LiveExport {
    pub export: log_exports::Model,
    pub job: Option<export_jobs::Model>,
}

/// A subscription's stream of events.
pub type Events<T> = BoxStream<'static, AppResult<LiveEvent<T>>>;

/// What a subscription is, for its start and end records.
#[derive(Clone, Debug)]
pub struct SubscriptionInfo {
    pub id: String,
    pub field: &'static str,
    pub arguments: Value,
}

/// How often an export's progress is read while it is being built.
const EXPORT_POLL: Duration = Duration::from_millis(500);

impl Facade {
    fn hub(&self) -> AppResult<&Arc<Hub>> {
        self.live.as_ref().ok_or_else(|| {
            AppError::bad_input(
                "subscriptions are served over a websocket (graphql-transport-ws) or \
                 text/event-stream on /graphql, not as a plain request",
            )
        })
    }

    /// What every subscription that takes `after` starts with: the decoded cursor, the hub,
    /// and its noted start (`name: value` and the cursor are its recorded arguments).
    fn begin_live(
        &self,
        field: &'static str,
        name: &str,
        value: Value,
        after: Option<String>,
    ) -> AppResult<(Option<LiveCursor>, Arc<Hub>, SubscriptionInfo)> {
        let after = after.as_deref().map(LiveCursor::decode).transpose()?;
        let hub = self.hub()?.clone();
        let mut arguments = serde_json::Map::new();
        arguments.insert(name.to_string(), value);
        arguments.insert(
            "after".into(),
            json!(after.as_ref().map(LiveCursor::encode)),
        );
        let info = self.start_subscription(field, Value::Object(arguments));
        Ok((after, hub, info))
    }

    /// Notes the subscription's start: its record is committed before its first event.
    fn start_subscription(&self, field: &'static str, arguments: Value) -> SubscriptionInfo {
        let info = SubscriptionInfo {
            id: crate::ids::new_id("sb"),
            field,
            arguments,
        };
        if let Some(caller) = self.caller.as_ref() {
            let operation = self.operation_name();
            self.note_entry(vocabulary::subscription(
                true,
                SubscriptionRecord {
                    subscription_id: &info.id,
                    key_id: &caller.key_id,
                    operation: &operation,
                    field,
                    arguments: info.arguments.clone(),
                    reason: None,
                    delivered: None,
                },
                micros(Utc::now()),
            ));
        }
        *crate::locked(&self.subscription) = Some(info.clone());
        info
    }

    /// Notes the end of this facade's subscription (if one started): why, and how many events
    /// it delivered. The transport commits it with the last deliveries.
    pub fn end_subscription(&self, reason: &str, delivered: u64) {
        let Some(info) = crate::locked(&self.subscription).take() else {
            return;
        };
        if let Some(caller) = self.caller.as_ref() {
            let operation = self.operation_name();
            self.note_entry(vocabulary::subscription(
                false,
                SubscriptionRecord {
                    subscription_id: &info.id,
                    key_id: &caller.key_id,
                    operation: &operation,
                    field: info.field,
                    arguments: info.arguments,
                    reason: Some(reason),
                    delivered: Some(delivered),
                },
                micros(Utc::now()),
            ));
        }
    }

    /// Lets go of the rows this facade's loaders hold (between a subscription's events).
    pub fn forget_rows(&self) {
        if let Some(loaders) = self.loaders.as_ref() {
            loaders.clear();
        }
    }

    /// The position now: a subscription started `after` it receives everything committed
    /// after this moment.
    pub async fn live_cursor(&self) -> AppResult<String> {
        let caller = self
            .authorize(Permission::ReadEvidence)
            .or_else(|_| self.authorize(Permission::ReadAudit))?;
        let tenant = crate::ledger::head_seq(&self.db.conn, &caller.tenant_id).await?;
        let platform = crate::ledger::head_seq(&self.db.conn, PLATFORM_LEDGER).await?;
        Ok(LiveCursor {
            tenant: Mark::through(tenant.unwrap_or(0)),
            platform: Some(Mark::through(platform.unwrap_or(0))),
        }
        .encode())
    }

    /// New runs of the caller's tenant that pass `filter`, in commit order.
    pub async fn live_runs(
        self: &Arc<Self>,
        filter: RunFilter,
        after: Option<String>,
    ) -> AppResult<Events<llm_runs::Model>> {
        let scope = self.scope(Permission::ReadEvidence)?;
        filter.validate()?;
        let tenant = scope.tenant_id.to_string();
        let (after, hub, info) =
            self.begin_live("llmRunAdded", "filter", json!(filter.applied()), after)?;
        let wants = Wants {
            runs: true,
            ..Wants::default()
        };
        let extract = Arc::new(move |b: &Batch| {
            b.runs
                .iter()
                .filter(|(_, r)| filter.matches(r))
                .map(|(seq, r)| (*seq, r.run_id.clone(), r.clone()))
                .collect()
        });
        let (_, items) = tail(&hub, &tenant, wants, after.map(|c| c.tenant), extract).await?;
        let facade = self.clone();
        let filters = json!({"subscription": info.id});
        Ok(single_ledger(items, move |run: &llm_runs::Model| {
            facade.note_list(
                "runs",
                EntityType::LlmRunList,
                "llmRunAdded",
                filters.clone(),
                vec![run.run_id.clone()],
            );
        }))
    }

    /// New steps of one trace (named by itself or by its run), in commit order.
    pub async fn live_steps(
        self: &Arc<Self>,
        run_id: Option<String>,
        trace_id: Option<String>,
        after: Option<String>,
    ) -> AppResult<Events<Projected<Shared<trace_steps::Model>, StepColumns>>> {
        let scope = self.scope(Permission::ReadEvidence)?;
        let tenant = scope.tenant_id.to_string();
        let trace_id = match (run_id, trace_id) {
            (Some(run_id), None) => {
                crate::facade::check_text("runId", &Some(run_id.clone()))?;
                let run = self.llm_run(&run_id).await?;
                run.trace_id.ok_or_else(|| {
                    AppError::bad_input(format!(
                        "run `{run_id}` has no trace id, so no steps can arrive for it"
                    ))
                })?
            }
            (None, Some(trace_id)) => {
                crate::facade::check_text("traceId", &Some(trace_id.clone()))?;
                trace_id
            }
            _ => {
                return Err(AppError::bad_input(
                    "name exactly one of `runId` and `traceId`",
                ));
            }
        };
        let (after, hub, info) =
            self.begin_live("traceStepAdded", "traceId", json!(trace_id), after)?;
        let wants = Wants {
            steps: true,
            ..Wants::default()
        };
        let wanted = trace_id.clone();
        let extract = Arc::new(move |b: &Batch| {
            b.steps
                .iter()
                .filter(|(_, s)| s.trace_id == wanted)
                .map(|(seq, s)| (*seq, format!("{:010}", s.step_index), s.clone()))
                .collect()
        });
        let (_, items) = tail(&hub, &tenant, wants, after.map(|c| c.tenant), extract).await?;
        let facade = self.clone();
        let filters = json!({"subscription": info.id, "traceId": trace_id});
        let events = single_ledger(items, move |s: &trace_steps::Model| {
            facade.note_list(
                "runs",
                EntityType::TraceStep,
                "traceStepAdded",
                filters.clone(),
                vec![crate::facade::runs::step_ref(s)],
            );
        });
        Ok(Box::pin(events.map(|r| {
            r.map(|e| LiveEvent {
                cursor: e.cursor,
                item: Projected::whole(Shared::one(e.item)),
            })
        })))
    }

    /// New system records the caller's tenant sees (its own and, by the filter's scope, the
    /// global ones), each ledger in commit order.
    pub async fn live_system_records(
        self: &Arc<Self>,
        filter: SystemFilter,
        after: Option<String>,
    ) -> AppResult<Events<system_records::Model>> {
        let scope = self.scope(Permission::ReadEvidence)?;
        filter.validate()?;
        let tenant = scope.tenant_id.to_string();
        let (after, hub, info) = self.begin_live(
            "systemRecordAdded",
            "filter",
            json!(filter.applied()),
            after,
        )?;
        let (own, global) = filter.owners();
        let filter = Arc::new(filter);
        let wants = Wants {
            system: true,
            ..Wants::default()
        };
        let extract = |filter: Arc<SystemFilter>| {
            Arc::new(move |b: &Batch| {
                b.system
                    .iter()
                    .filter(|(_, s)| filter.matches(s))
                    .map(|(seq, s)| (*seq, s.id.clone(), s.clone()))
                    .collect::<Vec<_>>()
            }) as super::Extract<system_records::Model>
        };
        let (after_tenant, after_platform) = match after {
            Some(c) => (Some(c.tenant), c.platform),
            None => (None, None),
        };
        // A ledger the scope leaves out still gets a tail, so the cursor keeps its place.
        let (tenant_mark, tenant_items) =
            tail(&hub, &tenant, wants, after_tenant, extract(filter.clone())).await?;
        let (platform_mark, platform_items) = tail(
            &hub,
            PLATFORM_LEDGER,
            wants,
            after_platform,
            extract(filter.clone()),
        )
        .await?;
        let keep = move |global_record: bool| (global_record && global) || (!global_record && own);
        let tagged = futures_util::stream::select(
            tenant_items.map(|i| (false, i)),
            platform_items.map(|i| (true, i)),
        );
        let facade = self.clone();
        let filters = json!({"subscription": info.id});
        let mut marks = (tenant_mark, platform_mark);
        let events = tagged.filter_map(move |(is_global, item)| {
            let out = match item {
                Ok((mark, record)) => {
                    if is_global {
                        marks.1 = mark;
                    } else {
                        marks.0 = mark;
                    }
                    keep(is_global).then(|| {
                        let entity = if is_global {
                            EntityType::GlobalSystemRecord
                        } else {
                            EntityType::SystemRecord
                        };
                        facade.note_list(
                            "system",
                            entity,
                            "systemRecordAdded",
                            filters.clone(),
                            vec![record.id.clone()],
                        );
                        Ok(LiveEvent {
                            cursor: LiveCursor {
                                tenant: marks.0.clone(),
                                platform: Some(marks.1.clone()),
                            }
                            .encode(),
                            item: record,
                        })
                    })
                }
                Err((e, mark)) => {
                    if is_global {
                        marks.1 = mark;
                    } else {
                        marks.0 = mark;
                    }
                    Some(Err(with_resume(
                        e,
                        &LiveCursor {
                            tenant: marks.0.clone(),
                            platform: Some(marks.1.clone()),
                        },
                    )))
                }
            };
            std::future::ready(out)
        });
        Ok(Box::pin(end_on_error(events)))
    }

    /// New entries of the caller's tenant's ledger that pass `filter` (the audit tail).
    pub async fn live_audit_entries(
        self: &Arc<Self>,
        filter: AuditFilter,
        after: Option<String>,
    ) -> AppResult<Events<Projected<audit_ledger::Model, AuditColumns>>> {
        let scope = self.scope(Permission::ReadAudit)?;
        filter.validate()?;
        let tenant = scope.tenant_id.to_string();
        let (after, hub, info) = self.begin_live(
            "auditEntryAppended",
            "filter",
            json!(filter.applied()),
            after,
        )?;
        let wants = Wants {
            entries: true,
            ..Wants::default()
        };
        let extract = Arc::new(move |b: &Batch| {
            b.entries
                .iter()
                .filter(|e| filter.matches(e))
                .map(|e| (e.seq, String::new(), e.clone()))
                .collect()
        });
        let (_, items) = tail(&hub, &tenant, wants, after.map(|c| c.tenant), extract).await?;
        let facade = self.clone();
        let filters = json!({"subscription": info.id});
        let events = single_ledger(items, move |e: &audit_ledger::Model| {
            facade.note_list(
                "audit",
                EntityType::AuditEntryList,
                "auditEntryAppended",
                filters.clone(),
                vec![e.id.clone()],
            );
        });
        Ok(Box::pin(events.map(|r| {
            r.map(|e| LiveEvent {
                cursor: e.cursor,
                item: Projected::whole(e.item),
            })
        })))
    }

    /// An export's state each time it changes, until it completes or fails.
    pub async fn live_export(self: &Arc<Self>, export_id: String) -> AppResult<Events<LiveExport>> {
        let scope = self.scope(Permission::ReadAudit)?;
        crate::facade::check_text("exportId", &Some(export_id.clone()))?;
        let tenant = scope.tenant_id.to_string();
        let db = self.db.clone();
        let shutdown = self.hub()?.watch_shutdown();
        let first = read_export(&db, &tenant, &export_id)
            .await?
            .ok_or_else(|| {
                AppError::not_found(format!("no export `{export_id}` in this tenant"))
            })?;
        self.start_subscription("exportProgress", json!({"exportId": export_id}));
        let facade = self.clone();
        let state = (Some(first), None::<(String, String, i64)>, false);
        let events = futures_util::stream::unfold(state, move |(mut next, mut last, done)| {
            let (db, tenant, export_id, facade) = (
                db.clone(),
                tenant.clone(),
                export_id.clone(),
                facade.clone(),
            );
            let mut shutdown = shutdown.clone();
            async move {
                if done {
                    return None;
                }
                loop {
                    if let Some(current) = next.take() {
                        let key = (
                            current.export.status.clone(),
                            current
                                .job
                                .as_ref()
                                .map(|j| j.state.clone())
                                .unwrap_or_default(),
                            current.job.as_ref().map_or(0, |j| j.records_written),
                        );
                        if last.as_ref() != Some(&key) {
                            let finished = current.export.status != "PENDING";
                            facade.note_read("audit", EntityType::Export, &export_id, "progress");
                            last = Some(key);
                            let event = LiveEvent {
                                cursor: String::new(),
                                item: current,
                            };
                            return Some((Ok(event), (None, last, finished)));
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(EXPORT_POLL) => {}
                        _ = shutdown.changed() => return None,
                    }
                    // Boxed: the stream waits in the sleep above with only this pointer.
                    match Box::pin(read_export(&db, &tenant, &export_id)).await {
                        Ok(found) => next = found,
                        Err(e) => return Some((Err(e), (None, last, true))),
                    }
                }
            }
        });
        Ok(Box::pin(events))
    }
}

async fn read_export(db: &crate::db::Db, tenant: &str, id: &str) -> AppResult<Option<LiveExport>> {
    let key = (tenant.to_string(), id.to_string());
    let export = log_exports::Entity::find_by_id(key.clone())
        .one(&db.conn)
        .await
        .context("read an export's progress")?;
    let Some(export) = export else {
        return Ok(None);
    };
    let job = export_jobs::Entity::find_by_id(key)
        .one(&db.conn)
        .await
        .context("read an export job's progress")?;
    Ok(Some(LiveExport { export, job }))
}

/// Sets the cursor to resume from on an interruption.
fn with_resume(e: AppError, cursor: &LiveCursor) -> AppError {
    match e {
        AppError::Interrupted {
            reason, message, ..
        } => AppError::Interrupted {
            reason,
            message,
            resume_after: Some(cursor.encode()),
        },
        other => other,
    }
}

/// Ends a stream after its first error.
fn end_on_error<T: Send + 'static>(
    events: impl futures_util::Stream<Item = AppResult<T>> + Send + 'static,
) -> BoxStream<'static, AppResult<T>> {
    Box::pin(events.scan(false, |failed, item| {
        let out = if *failed {
            None
        } else {
            *failed = item.is_err();
            Some(item)
        };
        std::future::ready(out)
    }))
}

/// The events of one ledger's tail, each noted by `note` as it is delivered.
fn single_ledger<T: Send + 'static>(
    items: BoxStream<'static, super::TailItem<T>>,
    note: impl Fn(&T) + Send + Sync + 'static,
) -> Events<T> {
    let events = items.map(move |item| match item {
        Ok((mark, item)) => {
            note(&item);
            Ok(LiveEvent {
                cursor: LiveCursor {
                    tenant: mark,
                    platform: None,
                }
                .encode(),
                item,
            })
        }
        Err((e, mark)) => Err(with_resume(
            e,
            &LiveCursor {
                tenant: mark,
                platform: None,
            },
        )),
    });
    end_on_error(events)
}
