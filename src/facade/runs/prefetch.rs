//! Loading what the nested views of a page of runs need, one statement per kind of data.

use crate::auth::Permission;
use crate::domain::WindowSeconds;
use crate::error::{AppError, AppResult};
use crate::facade::Facade;
use crate::facade::decode::{EventColumns, StepColumns};
use entity::llm_runs;

/// Which nested data a page of runs will need (decided from the query's selection).
#[derive(Clone, Debug, Default)]
pub struct RunPrefetch {
    /// Policy events, once per set of columns (a governance view reads what it shows; replay,
    /// export and metadata read every column).
    pub governance: Vec<EventColumns>,
    /// Correlated system records and exports: the correlation spine of metadata (and export,
    /// system views).
    pub spine: bool,
    /// Trace steps, once per set of columns (a trace view reads what it shows; replay,
    /// export, inflection and the system views read every column).
    pub steps: Vec<StepColumns>,
    /// Telemetry samples.
    pub telemetry: bool,
    /// Replay windows of these half-widths (replay, system replay and attribution).
    pub windows: Vec<WindowSeconds>,
}

/// Loader keys for every key in `of` and every distinct set in `sets`.
fn keys_per_set<'a, S: Copy + Ord>(
    mut sets: Vec<S>,
    of: impl Iterator<Item = &'a String> + Clone,
) -> Vec<(String, S)> {
    sets.sort();
    sets.dedup();
    sets.iter()
        .flat_map(|set| of.clone().map(move |key| (key.clone(), *set)))
        .collect()
}

impl Facade {
    /// Loads what the nested views of a page of runs need, one statement per kind of data, into
    /// the request's loader caches. Without this, nested loads would be batched only as far as
    /// the resolvers of a page happen to reach their loads within the same batch delay.
    pub async fn prefetch_runs(
        &self,
        runs: &[llm_runs::Model],
        want: RunPrefetch,
    ) -> AppResult<()> {
        let scope = self.scope(Permission::ReadEvidence)?;
        let windows = !want.windows.is_empty();
        if runs.is_empty()
            || !(!want.governance.is_empty()
                || want.spine
                || !want.steps.is_empty()
                || want.telemetry
                || windows)
        {
            return Ok(());
        }
        let run_ids = || runs.iter().map(|r| r.run_id.clone());
        let traces: Vec<String> = runs.iter().filter_map(|r| r.trace_id.clone()).collect();
        let l = scope.loaders;
        let spine = async {
            let governance = async {
                let mut sets = want.governance.clone();
                if windows {
                    sets.push(EventColumns::all());
                }
                let keys = keys_per_set(sets, runs.iter().map(|r| &r.run_id));
                if !keys.is_empty() {
                    l.governance.load_many(keys).await?;
                }
                Ok::<_, AppError>(())
            };
            let correlated = async {
                if want.spine {
                    futures_util::try_join!(
                        l.correlated_system.load_many(run_ids()),
                        l.exports.load_many(run_ids()),
                    )?;
                }
                Ok::<_, AppError>(())
            };
            futures_util::try_join!(governance, correlated)?;
            Ok::<_, AppError>(())
        };
        let steps = async {
            let mut sets = want.steps.clone();
            if windows {
                sets.push(StepColumns::all());
            }
            let keys = keys_per_set(sets, traces.iter());
            if !keys.is_empty() {
                l.steps.load_many(keys).await?;
            }
            Ok::<_, AppError>(())
        };
        let telemetry = async {
            if want.telemetry {
                l.telemetry.load_many(run_ids()).await?;
            }
            Ok::<_, AppError>(())
        };
        futures_util::try_join!(spine, steps, telemetry)?;
        if windows {
            let keys: Vec<(String, i64)> = runs
                .iter()
                .flat_map(|r| want.windows.iter().map(|w| (r.run_id.clone(), w.get())))
                .collect();
            l.system_window.load_many(keys).await?;
        }
        Ok(())
    }
}
