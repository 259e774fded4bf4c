//! The facade's operations on seeded (realistic, random) data, checked against answers computed
//! here from raw SQL: steps, governance, correlated and windowed system records, inflection
//! points, telemetry, exports and the audit views.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, TestApp};

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .unwrap_or_else(|e| panic!("timestamp `{text}`: {e}"))
        .with_timezone(&Utc)
}

/// Rows of a raw query, every column cast to text (NULL as "").
async fn rows(app: &TestApp, sql: &str) -> Vec<Vec<String>> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &app.db().conn;
    let result = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_string(),
        ))
        .await
        .unwrap();
    result
        .iter()
        .map(|r| {
            (0..)
                .map_while(|i| r.try_get_by_index::<Option<String>>(i).ok())
                .map(Option::unwrap_or_default)
                .collect()
        })
        .collect()
}

async fn operations_match_sql(backend: Backend) {
    let app = TestApp::spawn_unrecorded(backend).await;
    let key = app.seeded_auditor("acme", 60, 5, 50, 11).await;

    // One run of each status, plus runs that have exports.
    let runs = rows(&app, "SELECT run_id, execution_status, CAST(started_at AS TEXT), CAST(completed_at AS TEXT), trace_id FROM llm_runs WHERE tenant_id = 'acme' ORDER BY run_id").await;
    let mut chosen: Vec<Vec<String>> = Vec::new();
    for status in ["SUCCEEDED", "FAILED", "BLOCKED", "TIMED_OUT", "ABORTED"] {
        if let Some(r) = runs.iter().find(|r| r[1] == status) {
            chosen.push(r.clone());
        }
    }
    for r in rows(
        &app,
        "SELECT DISTINCT run_id FROM log_exports WHERE tenant_id = 'acme'",
    )
    .await
    .iter()
    .take(2)
    {
        if let Some(run) = runs.iter().find(|x| x[0] == r[0]) {
            chosen.push(run.clone());
        }
    }
    assert!(chosen.len() >= 3, "seeded data has several statuses");

    let q = r#"query($id: String!) { llmRun(runId: $id) {
        trace { steps { stepIndex status timestamp } }
        governance { events { eventId decision } }
        replay { inflection { reason timestamp } events { source recordId } }
        export { bundle bundleChecksum checksum latestExportMatchesBundle exports { exportId status } }
        system { events { events { recordId } } telemetry { status metrics { metric count } } snapshot { record { recordId } } }
    } }"#;
    for run in &chosen {
        let (run_id, trace_id) = (&run[0], &run[4]);
        let d = app.query(&key, q, json!({"id": run_id})).await;
        let r = &d["llmRun"];

        let steps = rows(&app, &format!("SELECT CAST(step_index AS TEXT), status, CAST(occurred_at AS TEXT) FROM trace_steps WHERE tenant_id = 'acme' AND trace_id = '{trace_id}' ORDER BY step_index")).await;
        let api_steps: Vec<(String, String)> = r["trace"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["stepIndex"].to_string(),
                    s["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            api_steps,
            steps
                .iter()
                .map(|s| (s[0].clone(), s[1].clone()))
                .collect::<Vec<_>>(),
            "{run_id} steps"
        );

        let gov = rows(&app, &format!("SELECT id, decision, CAST(occurred_at AS TEXT) FROM governance_events WHERE tenant_id = 'acme' AND run_id = '{run_id}'")).await;
        let mut gov_sorted = gov.clone();
        gov_sorted.sort_by_key(|g| (parse_time(&g[2]), g[0].clone()));
        let api_gov: Vec<String> = r["governance"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["eventId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            api_gov,
            gov_sorted.iter().map(|g| g[0].clone()).collect::<Vec<_>>(),
            "{run_id} governance"
        );

        // Inflection, re-derived from the rows.
        let bad_step = steps.iter().find(|s| s[1] == "FAILED" || s[1] == "BLOCKED");
        let (reason, at) = if let Some(s) = bad_step {
            (
                if s[1] == "FAILED" {
                    "FIRST_FAILED_STEP"
                } else {
                    "FIRST_BLOCKED_STEP"
                },
                parse_time(&s[2]),
            )
        } else if let Some(g) = gov_sorted
            .iter()
            .find(|g| g[1] == "BLOCK" || g[1] == "WARN")
        {
            (
                if g[1] == "BLOCK" {
                    "POLICY_BLOCK"
                } else {
                    "POLICY_WARN"
                },
                parse_time(&g[2]),
            )
        } else if !run[3].is_empty() {
            ("RUN_COMPLETED", parse_time(&run[3]))
        } else {
            ("RUN_STARTED", parse_time(&run[2]))
        };
        assert_eq!(
            r["replay"]["inflection"]["reason"],
            json!(reason),
            "{run_id}"
        );
        assert_eq!(
            parse_time(r["replay"]["inflection"]["timestamp"].as_str().unwrap()),
            at,
            "{run_id}"
        );
        let (start, end) = (at - Duration::seconds(30), at + Duration::seconds(30));
        let inside = |t: &str| {
            let t = parse_time(t);
            t >= start && t <= end
        };
        let system = rows(&app, "SELECT id, CAST(occurred_at AS TEXT), COALESCE(correlation_id, '') FROM system_records WHERE tenant_id = 'acme' OR tenant_id IS NULL").await;
        let mut expected: Vec<(DateTime<Utc>, u8, String)> = Vec::new();
        expected.extend(
            steps
                .iter()
                .filter(|s| inside(&s[2]))
                .map(|s| (parse_time(&s[2]), 0, format!("{trace_id}#{}", s[0]))),
        );
        expected.extend(
            gov.iter()
                .filter(|g| inside(&g[2]))
                .map(|g| (parse_time(&g[2]), 1, g[0].clone())),
        );
        expected.extend(
            system
                .iter()
                .filter(|s| inside(&s[1]))
                .map(|s| (parse_time(&s[1]), 2, s[0].clone())),
        );
        expected.sort_by(|a, b| {
            (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| {
                // Steps at one instant in index order, others by id.
                let idx = |s: &str| {
                    s.rsplit('#')
                        .next()
                        .and_then(|i| i.parse::<i64>().ok())
                        .unwrap_or(0)
                };
                if a.1 == 0 {
                    idx(&a.2).cmp(&idx(&b.2))
                } else {
                    a.2.cmp(&b.2)
                }
            })
        });
        let api_replay: Vec<String> = r["replay"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["recordId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            api_replay,
            expected.iter().map(|e| e.2.clone()).collect::<Vec<_>>(),
            "{run_id} replay"
        );

        // Correlated system events and the snapshot (earliest of them).
        let mut correlated: Vec<&Vec<String>> = system.iter().filter(|s| &s[2] == run_id).collect();
        correlated.sort_by_key(|s| (parse_time(&s[1]), s[0].clone()));
        let api_events: Vec<String> = r["system"]["events"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["recordId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            api_events,
            correlated.iter().map(|s| s[0].clone()).collect::<Vec<_>>(),
            "{run_id} events"
        );
        assert_eq!(
            r["system"]["snapshot"]["record"]["recordId"].as_str(),
            correlated.first().map(|s| s[0].as_str())
        );

        let samples = rows(&app, &format!("SELECT CAST(COUNT(*) AS TEXT) FROM telemetry_samples WHERE tenant_id = 'acme' AND run_id = '{run_id}'")).await;
        let collected = samples[0][0] != "0";
        assert_eq!(
            r["system"]["telemetry"]["status"],
            json!(if collected {
                "COLLECTED"
            } else {
                "NOT_COLLECTED"
            })
        );
        let counted: i64 = r["system"]["telemetry"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["count"].as_i64().unwrap())
            .sum();
        assert_eq!(counted.to_string(), samples[0][0]);

        // Exports: the seeder's are real builds (the checksum is the file's); the API compares
        // the records of the newest completed BUNDLE with what is stored now, so an export of
        // untouched evidence must match.
        let exports = rows(&app, &format!("SELECT id, status, COALESCE(checksum, ''), format FROM log_exports WHERE tenant_id = 'acme' AND run_id = '{run_id}' ORDER BY requested_at DESC, id")).await;
        assert_eq!(
            r["export"]["exports"].as_array().unwrap().len(),
            exports.len()
        );
        if let Some(done) = exports.iter().find(|e| e[1] == "COMPLETED") {
            assert_eq!(r["export"]["checksum"], json!(done[2]));
            if done[3] == "BUNDLE" {
                assert_eq!(
                    r["export"]["latestExportMatchesBundle"],
                    json!(true),
                    "{run_id}: stored evidence still matches its export"
                );
            }
        }
        let bundle: &Value = &r["export"]["bundle"];
        assert_eq!(bundle["steps"].as_array().unwrap().len(), steps.len());
    }

    // Lists and audit views, counted by SQL.
    let d = app
        .query(&key, r#"{ systemRecords { totalCount } auditEntries { totalCount }
            audit { identity { totalCount } authorization { totalCount } access { totalCount } exports { totalCount } } }"#, json!({}))
        .await;
    let count = |sql: &'static str| {
        let app = &app;
        async move { app.store.query_i64(sql).await[0] }
    };
    assert_eq!(
        d["systemRecords"]["totalCount"],
        json!(
            count(
                "SELECT COUNT(*) FROM system_records WHERE tenant_id = 'acme' OR tenant_id IS NULL"
            )
            .await
        )
    );
    assert_eq!(
        d["auditEntries"]["totalCount"],
        json!(count("SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'acme'").await)
    );
    assert_eq!(d["audit"]["identity"]["totalCount"], json!(count("SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'acme' AND category = 'IDENTITY'").await));
    assert_eq!(d["audit"]["authorization"]["totalCount"], json!(count("SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'acme' AND category = 'AUTHORIZATION'").await));
    assert_eq!(
        d["audit"]["access"]["totalCount"],
        json!(
            count(
                "SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'acme' AND category = 'ACCESS'"
            )
            .await
        )
    );
    assert_eq!(
        d["audit"]["exports"]["totalCount"],
        json!(count("SELECT COUNT(*) FROM log_exports WHERE tenant_id = 'acme'").await)
    );
    let denied =
        count("SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'acme' AND category = 'AUTHORIZATION' AND decision = 'DENY'")
            .await;
    assert!(denied > 0, "seeded authorization decisions include denials");
    let d = app
        .query(
            &key,
            "{ audit { authorization(decision: DENY, first: 100) { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["audit"]["authorization"]["totalCount"], json!(denied));
}
both!(operations_match_sql);
