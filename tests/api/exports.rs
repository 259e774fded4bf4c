//! Exports end to end: `requestExport` → the background build → `GET /exports/{id}` →
//! `verify-bundle`; tampering with each part of a downloaded bundle; a bundle checked against a
//! later kept checkpoint; a verifier written here from docs/exports.md alone; restarts in the
//! middle of a build; cancellation; permissions; the ledger and `audit { exports }`.

use std::time::{Duration, Instant};

use base64::Engine;
use runledger::export::verify::{self as bundle_verify, Options, Report};
use runledger::ledger::note::NoteVerifier;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both;
use crate::helpers::{Backend, TestApp};

const TENANT: &str = "acme";

const EXPORT_FIELDS: &str = "exportId runId scope format status requestedBy checksum downloadPath \
     build { state recordsWritten recordsTotal sizeBytes checkpointSize attempts failureReason }";

fn verifier_key(app: &TestApp) -> String {
    NoteVerifier::from(app.keys.signer.as_ref()).verifier_key()
}

async fn run_ids(app: &TestApp, key: &str) -> Vec<String> {
    let d = app
        .query(
            key,
            "{ llmRuns(first: 50, orderBy: {field: STARTED_AT, direction: ASC}) { nodes { runId } } }",
            json!({}),
        )
        .await;
    d["llmRuns"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["runId"].as_str().unwrap().to_string())
        .collect()
}

async fn request(app: &TestApp, key: &str, scope: Value) -> Value {
    let q = format!(
        "mutation($scope: ExportScopeInput!) {{ requestExport(scope: $scope) {{ {EXPORT_FIELDS} }} }}"
    );
    app.query(key, &q, json!({"scope": scope})).await["requestExport"].clone()
}

async fn exports(app: &TestApp, key: &str) -> Vec<Value> {
    let q = format!("{{ audit {{ exports(first: 100) {{ nodes {{ {EXPORT_FIELDS} }} }} }} }}");
    app.query(key, &q, json!({})).await["audit"]["exports"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until the export is no longer PENDING (a condition, with a deadline).
async fn finished(app: &TestApp, key: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = exports(app, key)
            .await
            .into_iter()
            .find(|e| e["exportId"] == json!(id))
            .expect("the export is listed");
        if found["status"] != json!("PENDING") {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "export {id} still PENDING: {found}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Downloaded {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

async fn download(base: &str, key: Option<&str>, id: &str, range: Option<&str>) -> Downloaded {
    let mut req = reqwest::Client::new().get(format!("{base}/exports/{id}"));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let resp = req.send().await.expect("GET /exports/{id}");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body").to_vec();
    Downloaded {
        status,
        headers,
        body,
    }
}

fn header(d: &Downloaded, name: &str) -> String {
    d.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn check(bytes: &[u8], key: &str) -> Report {
    let opts = Options {
        public_key: Some(NoteVerifier::parse(key).unwrap()),
        ..Options::default()
    };
    bundle_verify::verify(bytes, &opts).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Records an export of one run holds, counted in the database directly.
async fn records_of_run(app: &TestApp, run_id: &str) -> i64 {
    let n = |sql: String| async move { app.store.query_i64(&sql).await[0] };
    let t = TENANT;
    1 + n(format!(
        "SELECT COUNT(*) FROM trace_steps WHERE tenant_id = '{t}' AND trace_id IN \
         (SELECT trace_id FROM llm_runs WHERE tenant_id = '{t}' AND run_id = '{run_id}')"
    ))
    .await
        + n(format!(
            "SELECT COUNT(*) FROM governance_events WHERE tenant_id = '{t}' AND run_id = '{run_id}'"
        ))
        .await
        + n(format!(
            "SELECT COUNT(*) FROM system_records WHERE tenant_id = '{t}' AND correlation_id = '{run_id}'"
        ))
        .await
        + n(format!(
            "SELECT COUNT(*) FROM telemetry_samples WHERE tenant_id = '{t}' AND run_id = '{run_id}'"
        ))
        .await
}

/// Request → complete → download (whole and ranged) → verify, with the ledger and the export
/// views showing each step.
async fn an_export_is_built_downloaded_and_verified(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let auditor = app.seeded_auditor(TENANT, 4, 3, 100, 11).await;
    let run = run_ids(&app, &auditor).await[1].clone();
    let requested = request(&app, &auditor, json!({"runId": run})).await;
    assert_eq!(requested["status"], json!("PENDING"));
    assert_eq!(requested["format"], json!("BUNDLE"));
    assert_eq!(requested["scope"], json!(format!("run:{run}")));
    assert!(
        requested["requestedBy"]
            .as_str()
            .unwrap()
            .starts_with("key:")
    );
    assert_eq!(requested["downloadPath"], Value::Null);
    let id = requested["exportId"].as_str().unwrap().to_string();

    let done = finished(&app, &auditor, &id).await;
    assert_eq!(done["status"], json!("COMPLETED"), "{done}");
    let checksum = done["checksum"].as_str().unwrap().to_string();
    assert_eq!(done["downloadPath"], json!(format!("/exports/{id}")));
    let expected_records = records_of_run(&app, &run).await;
    assert_eq!(done["build"]["state"], json!("DONE"));
    assert_eq!(done["build"]["recordsWritten"], json!(expected_records));
    assert_eq!(done["build"]["recordsTotal"], json!(expected_records));

    let whole = download(&app.address, Some(&auditor), &id, None).await;
    assert_eq!(whole.status, 200);
    assert_eq!(
        sha256_hex(&whole.body),
        checksum,
        "served bytes match the checksum"
    );
    assert_eq!(header(&whole, "etag"), format!("\"{checksum}\""));
    assert_eq!(
        header(&whole, "content-length"),
        whole.body.len().to_string()
    );
    assert_eq!(done["build"]["sizeBytes"], json!(whole.body.len()));
    assert!(header(&whole, "content-disposition").contains(&format!("{id}.jsonl")));
    assert_eq!(header(&whole, "accept-ranges"), "bytes");

    let part = download(&app.address, Some(&auditor), &id, Some("bytes=5-24")).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body[5..25].to_vec());
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 5-24/{}", whole.body.len())
    );
    let tail = download(&app.address, Some(&auditor), &id, Some("bytes=-10")).await;
    assert_eq!(tail.body, whole.body[whole.body.len() - 10..].to_vec());
    let beyond = download(&app.address, Some(&auditor), &id, Some("bytes=999999999-")).await;
    assert_eq!(beyond.status, 416);

    let key = verifier_key(&app);
    let report = check(&whole.body, &key);
    assert_eq!(report.status, "VERIFIED", "{:?}", report.problems);
    assert_eq!(report.records_checked as i64, expected_records);
    independent::verify(&whole.body, &key).expect("the independent verifier accepts it");

    // The command line: 0 under the trusted key, 3 under only the bundle's own key.
    let file = std::env::temp_dir().join(format!("{id}.jsonl"));
    std::fs::write(&file, &whole.body).unwrap();
    let (code, out) = verify_bundle(&[file.to_str().unwrap(), "--public-key", &key]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["status"], json!("VERIFIED"));
    let (code, out) = verify_bundle(&[file.to_str().unwrap()]);
    assert_eq!(code, 3, "{out}");
    let _ = std::fs::remove_file(&file);

    // The run's export view shows it, and that its evidence still matches.
    let d = app
        .query(
            &auditor,
            "query($r: String!) { llmRun(runId: $r) { export { availableFormats latestExportMatchesBundle exports { exportId status downloadPath build { state sizeBytes } } } } }",
            json!({"r": run}),
        )
        .await;
    let view = &d["llmRun"]["export"];
    assert_eq!(
        view["availableFormats"],
        json!(["BUNDLE", "OTLP_JSON", "CSV"])
    );
    assert_eq!(view["latestExportMatchesBundle"], json!(true), "{view}");
    assert_eq!(view["exports"][0]["exportId"], json!(id));
    assert_eq!(
        view["exports"][0]["build"]["sizeBytes"],
        json!(whole.body.len())
    );

    // Request, completion and the downloads are in the ledger.
    let d = app
        .query(
            &auditor,
            "{ auditEntries(first: 100) { nodes { eventType entityType entityId actorId afterState views: afterState } } }",
            json!({}),
        )
        .await;
    let entries = d["auditEntries"]["nodes"].as_array().unwrap().clone();
    let of = |event: &str| -> Vec<Value> {
        entries
            .iter()
            .filter(|e| e["eventType"] == json!(event) && e["entityId"] == json!(id))
            .cloned()
            .collect()
    };
    let req = of("EXPORT_REQUESTED");
    assert_eq!(req.len(), 1);
    assert_eq!(req[0]["actorId"], requested["requestedBy"]);
    assert_eq!(
        req[0]["afterState"]["spec"],
        json!({"kind": "run", "run_id": run})
    );
    let completed = of("EXPORT_COMPLETED");
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["afterState"]["checksum"], json!(checksum));
    assert_eq!(
        completed[0]["afterState"]["records"],
        json!(expected_records)
    );
    assert_eq!(
        completed[0]["afterState"]["size_bytes"],
        json!(whole.body.len())
    );
    let downloads: Vec<Value> = of("EVIDENCE_READ")
        .into_iter()
        .filter(|e| e["entityType"] == json!("export"))
        .collect();
    assert_eq!(
        downloads.len(),
        4,
        "every download is recorded: {downloads:?}"
    );
}
both!(an_export_is_built_downloaded_and_verified);

fn verify_bundle(args: &[&str]) -> (i32, Value) {
    let out = crate::cli::runledger()
        .arg("verify-bundle")
        .args(args)
        .output()
        .expect("run runledger verify-bundle");
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report)
}

fn lines(body: &[u8]) -> Vec<Value> {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn join(lines: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(runledger::canonical::canonical_json(l).as_bytes());
        out.push(b'\n');
    }
    out
}

/// The bytes of a bundle of `scope`, requested, built, downloaded and verified.
async fn verified_bundle(app: &TestApp, key: &str, scope: Value) -> Vec<u8> {
    let id = request(app, key, scope).await["exportId"]
        .as_str()
        .unwrap()
        .to_string();
    let done = finished(app, key, &id).await;
    assert_eq!(done["status"], json!("COMPLETED"), "{done}");
    let body = download(&app.address, Some(key), &id, None).await.body;
    let report = check(&body, &verifier_key(app));
    assert_eq!(report.status, "VERIFIED", "{:?}", report.problems);
    body
}

/// Each part of a downloaded bundle tampered in turn is detected, and named.
async fn tampering_with_a_bundle_is_detected_and_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let auditor = app.seeded_auditor(TENANT, 6, 4, 100, 5).await;
    let requested = request(&app, &auditor, json!({"runs": {}})).await;
    let id = requested["exportId"].as_str().unwrap().to_string();
    assert_eq!(
        finished(&app, &auditor, &id).await["status"],
        json!("COMPLETED")
    );
    let body = download(&app.address, Some(&auditor), &id, None).await.body;
    let key = verifier_key(&app);
    assert_eq!(check(&body, &key).status, "VERIFIED");
    assert_eq!(join(&lines(&body)), body, "every line is canonical JSON");
    let original = lines(&body);
    let records: Vec<usize> = (0..original.len())
        .filter(|i| original[*i]["type"] == json!("record"))
        .collect();
    assert!(records.len() > 10);
    let name_of = |i: usize| original[i]["name"].as_str().unwrap().to_string();
    let manifest = original.len() - 1;

    let expect = |tampered: Vec<u8>, kind: &str, member: &str, record: Option<String>| {
        let report = check(&tampered, &key);
        assert_eq!(report.status, "BROKEN", "{kind}: {:?}", report.problems);
        let first = &report.problems[0];
        assert_eq!(first.kind, kind, "{:?}", report.problems);
        assert_eq!(
            report.first_bad_member.as_deref(),
            Some(member),
            "{:?}",
            report.problems
        );
        if record.is_some() {
            assert_eq!(report.first_bad_record, record, "{:?}", report.problems);
        }
        assert!(
            independent::verify(&tampered, &key).is_err(),
            "the independent verifier rejects {kind}"
        );
    };

    // A record field.
    let mut l = original.clone();
    let r = records[3];
    let mut rec: Value = serde_json::from_str(l[r]["record"].as_str().unwrap()).unwrap();
    rec["recorded_at"] = json!("2020-01-01T00:00:00.000000Z");
    l[r]["record"] = json!(runledger::canonical::canonical_json(&rec));
    expect(
        join(&l),
        "RECORD_PROOF_INVALID",
        "records",
        Some(name_of(r)),
    );

    // A proof node: a bundle of all the tenant's runs proves its records to subtree roots
    // its anchor lines list (docs/exports.md, "Subtree roots"); one of them changed.
    let mut l = original.clone();
    let a = (0..l.len())
        .find(|i| l[*i]["type"] == json!("anchor") && l[*i].get("subtree_roots").is_some())
        .expect("a bundle of all runs lists subtree roots");
    let seq = l[a]["entry"]["seq"].as_i64().unwrap();
    l[a]["subtree_roots"][0] = json!("00".repeat(32));
    expect(
        join(&l),
        "SUBTREE_ROOTS_INVALID",
        "anchors",
        Some(format!("ledger:{seq}")),
    );
    // A proof node of a record, in a bundle of records with audit paths: one run's, whose
    // few records prove to their subtree roots or to the anchor's root itself.
    let run = run_ids(&app, &auditor).await[0].clone();
    let one = lines(&verified_bundle(&app, &auditor, json!({"runId": run})).await);
    let r = (0..one.len())
        .find(|i| one[*i]["type"] == json!("record") && one[*i]["proof"][0].is_string())
        .expect("a record of one run has an audit path");
    let mut l = one.clone();
    l[r]["proof"][0] = json!("00".repeat(32));
    expect(
        join(&l),
        "RECORD_PROOF_INVALID",
        "records",
        Some(one[r]["name"].as_str().unwrap().to_string()),
    );

    // The manifest.
    let mut l = original.clone();
    l[manifest]["requested_by"] = json!("key:someone-else");
    expect(join(&l), "MANIFEST_MISMATCH", "manifest", None);

    // A member's checksum.
    let mut l = original.clone();
    let members = l[manifest]["members"].as_array_mut().unwrap();
    let m = members
        .iter_mut()
        .find(|m| m["name"] == json!("records"))
        .unwrap();
    m["sha256"] = json!("ab".repeat(32));
    expect(join(&l), "MEMBER_HASH_MISMATCH", "records", None);

    // The checkpoint signature.
    let mut l = original.clone();
    let note = l[0]["note"].as_str().unwrap().to_string();
    let (body_text, sig) = note.rsplit_once(' ').unwrap();
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(sig.trim_end())
        .unwrap();
    raw[10] ^= 1;
    let forged = format!(
        "{body_text} {}\n",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    l[0]["note"] = json!(forged);
    expect(join(&l), "BAD_SIGNATURE", "checkpoint", None);

    // A record removed.
    let mut l = original.clone();
    l.remove(records[2]);
    expect(join(&l), "MEMBER_LINES_MISMATCH", "records", None);

    // A record added (here: one of the bundle's own, a second time).
    let mut l = original.clone();
    l.insert(records[5], original[records[1]].clone());
    expect(
        join(&l),
        "DUPLICATE_RECORD",
        "records",
        Some(name_of(records[1])),
    );

    // Two records swapped.
    let mut l = original.clone();
    l.swap(records[0], records[4]);
    expect(join(&l), "MEMBER_HASH_MISMATCH", "records", None);
}
both!(tampering_with_a_bundle_is_detected_and_named);

/// A bundle checked against a checkpoint the auditor kept later, with the consistency proof
/// between the two; a forged one is refused.
async fn a_bundle_is_checked_against_a_later_kept_checkpoint(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let auditor = app.seeded_auditor(TENANT, 3, 2, 0, 3).await;
    let run = run_ids(&app, &auditor).await[0].clone();
    let id = request(&app, &auditor, json!({"runId": run})).await["exportId"]
        .as_str()
        .unwrap()
        .to_string();
    let done = finished(&app, &auditor, &id).await;
    let pinned = done["build"]["checkpointSize"].as_i64().unwrap();
    let body = download(&app.address, Some(&auditor), &id, None).await.body;
    let later = app.checkpoint(TENANT).await;
    assert!(later > pinned);
    let kept = app
        .store
        .query_strings(&format!(
            "SELECT signed_note FROM ledger_checkpoints WHERE tenant_id = '{TENANT}' AND tree_size = {later}"
        ))
        .await
        .remove(0);
    let d = app
        .query(
            &auditor,
            "query($from: Int!, $to: Int!) { audit { consistencyProof(fromSize: $from, toSize: $to) { hashes } } }",
            json!({"from": pinned, "to": later}),
        )
        .await;
    let proof: Vec<[u8; 32]> = d["audit"]["consistencyProof"]["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            hex::decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    let key = NoteVerifier::parse(&verifier_key(&app)).unwrap();
    let with = |proof: Vec<[u8; 32]>| {
        bundle_verify::verify(
            body.as_slice(),
            &Options {
                public_key: Some(key.clone()),
                trusted_checkpoint: Some(kept.clone()),
                consistency_proof: Some(proof),
            },
        )
        .unwrap()
    };
    let good = with(proof.clone());
    assert_eq!(good.status, "VERIFIED", "{:?}", good.problems);
    assert_eq!(good.trusted_checkpoint, Some("consistent"));
    let mut forged = proof.clone();
    forged[0][0] ^= 1;
    let bad = with(forged);
    assert_eq!(bad.status, "BROKEN");
    assert_eq!(bad.problems[0].kind, "CONSISTENCY_FAILED");
    assert_eq!(bad.first_bad_member.as_deref(), Some("trusted_checkpoint"));
}
both!(a_bundle_is_checked_against_a_later_kept_checkpoint);

/// Viewers may not export; another tenant's export is a 404; an unknown key a 401.
async fn exports_are_for_auditors_and_admins_of_the_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let auditor = app.seeded_auditor(TENANT, 2, 2, 0, 1).await;
    let other = app.seeded_auditor("globex", 1, 1, 0, 2).await;
    let viewer = runledger::auth::create_key(
        app.db(),
        TENANT,
        runledger::domain::Role::Viewer,
        None,
        None,
    )
    .await
    .unwrap()
    .0;
    let admin =
        runledger::auth::create_key(app.db(), TENANT, runledger::domain::Role::Admin, None, None)
            .await
            .unwrap()
            .0;
    let q = "mutation { requestExport(scope: {runs: {}}) { exportId } }";
    let (code, _) = app.query_error(Some(&viewer), q, json!({})).await;
    assert_eq!(code, "FORBIDDEN");
    let (code, message) = app
        .query_error(
            Some(&auditor),
            "mutation { requestExport(scope: {}) { exportId } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("exactly one"), "{message}");
    let (code, message) = app
        .query_error(
            Some(&auditor),
            "mutation { requestExport(scope: {ledger: {fromSeq: 9, toSeq: 2}}) { exportId } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("fromSeq"), "{message}");
    let (code, _) = app
        .query_error(
            Some(&auditor),
            "mutation { requestExport(scope: {runId: \"no-such-run\"}) { exportId } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let id = request(&app, &admin, json!({"runs": {}})).await["exportId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        finished(&app, &auditor, &id).await["status"],
        json!("COMPLETED")
    );
    assert_eq!(
        download(&app.address, Some(&auditor), &id, None)
            .await
            .status,
        200
    );
    assert_eq!(
        download(&app.address, Some(&viewer), &id, None)
            .await
            .status,
        403
    );
    let foreign = download(&app.address, Some(&other), &id, None).await;
    assert_eq!(foreign.status, 404);
    // Indistinguishable from an export that does not exist.
    let missing = download(&app.address, Some(&other), "ex_missing", None).await;
    assert_eq!(missing.status, 404);
    let message = |d: &Downloaded| {
        let v: Value = serde_json::from_slice(&d.body).unwrap();
        (
            v["errors"][0]["extensions"]["code"].clone(),
            v["errors"][0]["message"]
                .as_str()
                .unwrap()
                .replace(&id, "ex_missing"),
        )
    };
    assert_eq!(message(&foreign), message(&missing));
    assert_eq!(download(&app.address, None, &id, None).await.status, 401);
}
both!(exports_are_for_auditors_and_admins_of_the_tenant);

/// A build interrupted by a crash is resumed by the next server, or failed with its reason
/// after too many attempts; never completed from a partial file. A queued export can be
/// cancelled.
async fn interrupted_builds_are_resumed_or_failed_never_completed_partial(backend: Backend) {
    // A server that builds nothing: its jobs stay queued.
    let app = TestApp::spawn_exporting(backend, Default::default(), 0).await;
    let auditor = app.seeded_auditor(TENANT, 3, 2, 0, 9).await;
    let runs = run_ids(&app, &auditor).await;
    let resumed = request(&app, &auditor, json!({"runId": runs[0]})).await["exportId"]
        .as_str()
        .unwrap()
        .to_string();
    let worn_out = request(&app, &auditor, json!({"runId": runs[1]})).await["exportId"]
        .as_str()
        .unwrap()
        .to_string();
    let cancelled = request(&app, &auditor, json!({"runId": runs[2]})).await["exportId"]
        .as_str()
        .unwrap()
        .to_string();

    // Cancelling: FAILED with the reason, recorded; a second cancel is a conflict.
    let q = format!("mutation($id: ID!) {{ cancelExport(exportId: $id) {{ {EXPORT_FIELDS} }} }}");
    let c = app.query(&auditor, &q, json!({"id": cancelled})).await["cancelExport"].clone();
    assert_eq!(c["status"], json!("FAILED"));
    assert!(
        c["build"]["failureReason"]
            .as_str()
            .unwrap()
            .starts_with("cancelled by key:")
    );
    let (code, _) = app
        .query_error(Some(&auditor), &q, json!({"id": cancelled}))
        .await;
    assert_eq!(code, "CONFLICT");

    // As a builder that crashed would leave them: RUNNING under a lease that ran out, a partial
    // file on disk; one of them already at its last attempt.
    for (id, attempts) in [(&resumed, 1), (&worn_out, 3)] {
        app.store
            .exec(&format!(
                "UPDATE export_jobs SET state = 'RUNNING', lease_owner = 'worker:crashed', \
                 lease_until_us = 1, attempts = {attempts}, records_written = 2 WHERE export_id = '{id}'"
            ))
            .await
            .unwrap();
    }
    let final_path = app.exports.file_of(TENANT, &resumed, "BUNDLE");
    std::fs::create_dir_all(final_path.parent().unwrap()).unwrap();
    let partial = final_path.with_file_name(format!("{resumed}.jsonl.partial"));
    std::fs::write(&partial, b"{\"type\":\"checkpoint\"}\n").unwrap();

    // The next server takes them back.
    let second = app.another_server(2).await;
    let done = finished(&app, &auditor, &resumed).await;
    assert_eq!(done["status"], json!("COMPLETED"), "{done}");
    assert_eq!(done["build"]["attempts"], json!(2));
    let failed = finished(&app, &auditor, &worn_out).await;
    assert_eq!(failed["status"], json!("FAILED"));
    assert!(
        failed["build"]["failureReason"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{failed}"
    );
    let body = download(&second, Some(&auditor), &resumed, None).await.body;
    assert_eq!(sha256_hex(&body), done["checksum"].as_str().unwrap());
    assert_eq!(check(&body, &verifier_key(&app)).status, "VERIFIED");
    assert!(!partial.exists(), "the partial file was replaced");
    assert_eq!(
        download(&second, Some(&auditor), &worn_out, None)
            .await
            .status,
        409
    );

    // Each outcome of this test's exports is chained once (the seeder cancelled one of its own),
    // and the full verification agrees with the records.
    let failed_entries = app
        .store
        .query_strings(&format!(
            "SELECT entity_id FROM audit_ledger WHERE tenant_id = '{TENANT}' AND event_type = 'EXPORT_FAILED' \
             AND entity_id IN ('{resumed}', '{worn_out}', '{cancelled}') ORDER BY entity_id"
        ))
        .await;
    let mut want = vec![cancelled.clone(), worn_out.clone()];
    want.sort();
    assert_eq!(failed_entries, want);
    let d = app
        .query(
            &auditor,
            "{ audit { integrity(mode: FULL) { anomalies { kind record } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["audit"]["integrity"]["anomalies"], json!([]));
}
both!(interrupted_builds_are_resumed_or_failed_never_completed_partial);

/// `runledger export` builds an export as the operator: recorded, downloadable, verifiable.
async fn operators_export_from_the_command_line(backend: Backend) {
    let app = TestApp::spawn_exporting(backend, Default::default(), 0).await;
    let auditor = app.seeded_auditor(TENANT, 3, 2, 0, 8).await;
    let run = run_ids(&app, &auditor).await[2].clone();
    let out = std::env::temp_dir().join(format!(
        "runledger_test_cli_export_{}.jsonl",
        runledger::ids::random_hex(6)
    ));
    let printed = crate::cli::runledger()
        .args([
            "export",
            "--database-url",
            &app.store.url,
            "--tenant",
            TENANT,
        ])
        .args([
            "--scope",
            &format!("run:{run}"),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--signing-key-file", app.key_file().to_str().unwrap()])
        .args(["--export-dir", app.exports.dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let printed: Value = serde_json::from_slice(&printed.stdout).unwrap();
    let body = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(printed["checksum"], json!(sha256_hex(&body)));
    assert_eq!(printed["records"], json!(records_of_run(&app, &run).await));
    assert_eq!(check(&body, &verifier_key(&app)).status, "VERIFIED");
    let id = printed["export_id"].as_str().unwrap();
    let listed = exports(&app, &auditor).await;
    let row = listed.iter().find(|e| e["exportId"] == json!(id)).unwrap();
    assert_eq!(row["status"], json!("COMPLETED"));
    assert_eq!(row["requestedBy"], json!("runledger-cli"));
    // The server serves the operator's export like any other.
    let served = download(&app.address, Some(&auditor), id, None).await;
    assert_eq!(served.body, body);
    let bad = crate::cli::runledger()
        .args([
            "export",
            "--database-url",
            &app.store.url,
            "--tenant",
            TENANT,
        ])
        .args(["--scope", "everything", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("scope"));
}
both!(operators_export_from_the_command_line);

/// Parses CSV with Python's standard `csv` module in strict mode (a reader written by others,
/// not this project), after checking that every record ends in CRLF as RFC 4180 says.
fn read_csv(text: &str) -> Vec<Vec<String>> {
    use std::io::Write;
    assert!(text.ends_with("\r\n"), "the last record ends in CRLF");
    assert!(
        text.split("\r\n")
            .all(|line| !line.contains('\n') || line.contains('"')),
        "records end in CRLF, never a bare LF outside quotes"
    );
    let script = "import csv, io, json, sys\n\
                  text = sys.stdin.buffer.read().decode('utf-8')\n\
                  rows = list(csv.reader(io.StringIO(text, newline=''), strict=True))\n\
                  json.dump(rows, sys.stdout)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (the CSV reader of its standard library)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "Python's csv module refused the file");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A CSV export: one row per run, readable by an RFC 4180 reader.
async fn runs_are_exported_as_csv(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let auditor = app.seeded_auditor(TENANT, 5, 2, 0, 6).await;
    let q = "mutation { requestExport(scope: {runs: {}}, format: CSV) { exportId format } }";
    let d = app.query(&auditor, q, json!({})).await;
    let id = d["requestExport"]["exportId"].as_str().unwrap().to_string();
    assert_eq!(d["requestExport"]["format"], json!("CSV"));
    assert_eq!(
        finished(&app, &auditor, &id).await["status"],
        json!("COMPLETED")
    );
    let got = download(&app.address, Some(&auditor), &id, None).await;
    assert_eq!(header(&got, "content-type"), "text/csv");
    assert!(header(&got, "content-disposition").contains(&format!("{id}.csv")));
    let rows = read_csv(std::str::from_utf8(&got.body).unwrap());
    assert_eq!(rows[0][0], "run_id");
    assert_eq!(rows[0].last().unwrap(), "anchor_id");
    let runs = app
        .store
        .query_strings(&format!(
            "SELECT run_id FROM llm_runs WHERE tenant_id = '{TENANT}' ORDER BY run_id"
        ))
        .await;
    let ids: Vec<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids, runs, "one row per run, in run id order");
    let model = rows[0].iter().position(|c| c == "model").unwrap();
    let tokens = rows[0].iter().position(|c| c == "input_tokens").unwrap();
    let d = app
        .query(
            &auditor,
            "query($r: String!) { llmRun(runId: $r) { model inputTokens } }",
            json!({"r": rows[1][0]}),
        )
        .await;
    assert_eq!(json!(rows[1][model]), d["llmRun"]["model"]);
    assert_eq!(rows[1][tokens], d["llmRun"]["inputTokens"].to_string());
    assert!(rows.iter().all(|r| r.len() == rows[0].len()));
    let (code, message) = app
        .query_error(
            Some(&auditor),
            "mutation { requestExport(scope: {ledger: {}}, format: CSV) { exportId } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("CSV"), "{message}");
}
both!(runs_are_exported_as_csv);

/// A ledger scope exports entries with their inclusion proofs.
async fn the_audit_ledger_is_exported_by_seq_range(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let auditor = app.seeded_auditor(TENANT, 2, 2, 0, 4).await;
    let id = request(
        &app,
        &auditor,
        json!({"ledger": {"fromSeq": 2, "toSeq": 6, "categories": ["IDENTITY", "ANCHOR", "ACCESS", "AUTHORIZATION", "EXPORT", "GOVERNANCE", "INTEGRITY"]}}),
    )
    .await["exportId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        finished(&app, &auditor, &id).await["status"],
        json!("COMPLETED")
    );
    let body = download(&app.address, Some(&auditor), &id, None).await.body;
    let report = check(&body, &verifier_key(&app));
    assert_eq!(report.status, "VERIFIED", "{:?}", report.problems);
    assert_eq!(report.entries_checked, 5);
    independent::verify(&body, &verifier_key(&app)).unwrap();
}
both!(the_audit_ledger_is_exported_by_seq_range);

/// A verifier of docs/exports.md written from the document alone: it calls none of the
/// server's code (hashing, Merkle proofs, note signatures are re-implemented here).
mod independent {
    use std::collections::HashMap;

    use base64::Engine;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    use serde_json::Value;
    use sha2::{Digest, Sha256};

    fn sha(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    fn node(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
        sha(&[&[1u8], l, r])
    }

    /// RFC 9162 §2.1.3.2.
    /// RFC 6962 §2.1's MTH of hashes taken as leaf hashes (one hash is its own MTH): split at
    /// the largest power of two below the count, `SHA-256(0x01 ‖ left ‖ right)`.
    fn mth(hashes: &[[u8; 32]]) -> [u8; 32] {
        match hashes.len() {
            0 => sha(&[]),
            1 => hashes[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node(&mth(&hashes[..k]), &mth(&hashes[k..]))
            }
        }
    }

    fn included(
        leaf: [u8; 32],
        index: u64,
        size: u64,
        proof: &[[u8; 32]],
        root: &[u8; 32],
    ) -> bool {
        if index >= size {
            return false;
        }
        let (mut f, mut s) = (index, size - 1);
        let mut r = leaf;
        for p in proof {
            if s == 0 {
                return false;
            }
            if f % 2 == 1 || f == s {
                r = node(p, &r);
                while f % 2 == 0 && f != 0 {
                    f /= 2;
                    s /= 2;
                }
            } else {
                r = node(&r, p);
            }
            f /= 2;
            s /= 2;
        }
        s == 0 && &r == root
    }

    fn hash32(v: &Value) -> Result<[u8; 32], String> {
        let h =
            hex::decode(v.as_str().ok_or("hash is not a string")?).map_err(|e| e.to_string())?;
        h.try_into().map_err(|_| "hash is not 32 bytes".to_string())
    }

    fn proof(v: &Value) -> Result<Vec<[u8; 32]>, String> {
        v.as_array()
            .ok_or("proof is not an array")?
            .iter()
            .map(hash32)
            .collect()
    }

    /// The checkpoint note's tree size and root, after its Ed25519 signature verified.
    fn open_note(note: &str, key: &str) -> Result<(String, u64, [u8; 32]), String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut parts = key.splitn(3, '+');
        let (name, id_hex, typed) = (
            parts.next().ok_or("key name")?,
            parts.next().ok_or("key id")?,
            parts.next().ok_or("key")?,
        );
        let typed = b64.decode(typed).map_err(|e| e.to_string())?;
        if typed.first() != Some(&1) || typed.len() != 33 {
            return Err("not an Ed25519 verifier key".into());
        }
        let id = sha(&[name.as_bytes(), b"\n", &typed]);
        if hex::encode(&id[..4]) != id_hex {
            return Err("key id does not match".into());
        }
        let key =
            VerifyingKey::from_bytes(typed[1..].try_into().unwrap()).map_err(|e| e.to_string())?;
        let (body, sigs) = note.split_once("\n\n").ok_or("no blank line")?;
        let body = format!("{body}\n");
        let mut verified = false;
        for line in sigs.lines() {
            let rest = line.strip_prefix("\u{2014} ").ok_or("bad signature line")?;
            let (signer, blob) = rest.split_once(' ').ok_or("bad signature line")?;
            let blob = b64.decode(blob).map_err(|e| e.to_string())?;
            if signer == name && blob.len() == 68 && blob[..4] == id[..4] {
                let sig = Signature::from_slice(&blob[4..]).map_err(|e| e.to_string())?;
                key.verify(body.as_bytes(), &sig)
                    .map_err(|_| "bad signature")?;
                verified = true;
            }
        }
        if !verified {
            return Err("no signature by the key".into());
        }
        let lines: Vec<&str> = body.lines().collect();
        let size = lines.get(1).ok_or("size")?.parse().map_err(|_| "size")?;
        let root: [u8; 32] = b64
            .decode(lines.get(2).ok_or("root")?)
            .map_err(|e| e.to_string())?
            .try_into()
            .map_err(|_| "root length")?;
        Ok((lines[0].to_string(), size, root))
    }

    /// An entry line's leaf hash (docs/ledger.md's encoding), checked against its entry_hash.
    fn entry_leaf(line: &Value) -> Result<(i64, [u8; 32]), String> {
        let e = &line["entry"];
        let mut out = Vec::new();
        let mut field = |v: Option<String>| match v {
            None => out.push(0u8),
            Some(s) => {
                out.push(1);
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        };
        let t = |k: &str| e[k].as_str().map(str::to_string);
        let seq = e["seq"].as_i64().ok_or("seq")?;
        field(Some("runledger.ledger.v1".into()));
        field(t("tenant_id"));
        field(Some(seq.to_string()));
        for k in [
            "prev_hash",
            "id",
            "category",
            "event_type",
            "entity_type",
            "entity_id",
            "actor_type",
            "actor_id",
            "action_reason",
            "decision",
            "before_state",
            "after_state",
            "correlation_id",
            "occurred_at",
            "recorded_at",
        ] {
            field(t(k));
        }
        let leaf = sha(&[&[0u8], &out]);
        if hash32(&line["entry_hash"])? != leaf {
            return Err(format!("entry {seq} does not hash to its entry_hash"));
        }
        Ok((seq, leaf))
    }

    pub fn verify(body: &[u8], key: &str) -> Result<u64, String> {
        let raw: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
        if raw.last() != Some(&&b""[..]) {
            return Err("the file does not end with a newline".into());
        }
        let raw = &raw[..raw.len() - 1];
        let lines: Vec<Value> = raw
            .iter()
            .map(|l| serde_json::from_slice(l).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let manifest = lines.last().ok_or("empty")?;
        if manifest["type"] != "manifest" || manifest["format"] != "runledger.bundle.v2" {
            return Err("the last line is not a v2 manifest".into());
        }
        // Members: consecutive lines of one type, in the manifest's order.
        let member_of = |t: &str| match t {
            "anchor" => "anchors".to_string(),
            "record" => "records".to_string(),
            "entry" => "entries".to_string(),
            other => other.to_string(),
        };
        let mut hashes: Vec<(String, u64, Sha256)> = Vec::new();
        for (i, l) in lines[..lines.len() - 1].iter().enumerate() {
            let m = member_of(l["type"].as_str().ok_or("type")?);
            if hashes.last().map(|h| &h.0) != Some(&m) {
                if hashes.iter().any(|h| h.0 == m) {
                    return Err(format!("member {m} is split"));
                }
                hashes.push((m.clone(), 0, Sha256::new()));
            }
            let h = hashes.last_mut().unwrap();
            h.1 += 1;
            h.2.update(raw[i]);
            h.2.update(b"\n");
        }
        let listed = manifest["members"].as_array().ok_or("members")?;
        let computed: HashMap<String, (u64, String)> = hashes
            .into_iter()
            .map(|(m, n, h)| (m, (n, hex::encode(h.finalize()))))
            .collect();
        for m in listed {
            let name = m["name"].as_str().ok_or("member name")?;
            let (n, h) = computed
                .get(name)
                .cloned()
                .unwrap_or((0, hex::encode(Sha256::digest(b""))));
            if m["lines"].as_u64() != Some(n) || m["sha256"].as_str() != Some(h.as_str()) {
                return Err(format!("member {name} does not match the manifest"));
            }
        }
        if computed
            .keys()
            .any(|k| !listed.iter().any(|m| m["name"] == k.as_str()))
        {
            return Err("a member is not listed".into());
        }
        let note = lines[0]["note"].as_str().ok_or("checkpoint note")?;
        let (origin, size, root) = open_note(note, key)?;
        let tenant = origin.split_once('/').ok_or("origin")?.1;
        if manifest["tenant"] != tenant || manifest["checkpoint"]["tree_size"] != size {
            return Err("the manifest does not name the checkpoint".into());
        }
        // Anchor id → (merkle root, leaf count, seq, subtree height and roots).
        type Subtrees = Option<(u32, Vec<[u8; 32]>)>;
        let mut anchors: HashMap<String, ([u8; 32], u64, i64, Subtrees)> = HashMap::new();
        let mut request_seq = None;
        let mut checked = 0;
        for l in &lines[1..lines.len() - 1] {
            match l["type"].as_str().unwrap_or("") {
                // The key is given by the auditor, not taken from the bundle.
                "verifier_key" => {}
                "request" | "anchor" | "entry" => {
                    let (seq, leaf) = entry_leaf(l)?;
                    if l["entry"]["tenant_id"] != tenant {
                        return Err("an entry of another tenant".into());
                    }
                    if !included(leaf, (seq - 1) as u64, size, &proof(&l["proof"])?, &root) {
                        return Err(format!("entry {seq} is not in the checkpoint's tree"));
                    }
                    match l["type"].as_str() {
                        Some("request") => {
                            let state: Value = serde_json::from_str(
                                l["entry"]["after_state"].as_str().ok_or("request state")?,
                            )
                            .map_err(|e| e.to_string())?;
                            if l["entry"]["event_type"] != "EXPORT_REQUESTED"
                                || manifest["export_id"] != l["entry"]["entity_id"]
                                || manifest["requested_by"] != l["entry"]["actor_id"]
                                || manifest["request_seq"] != seq
                                || manifest["scope"] != state["scope"]
                                || manifest["spec"] != state["spec"]
                            {
                                return Err("the request entry is not this export's".into());
                            }
                            request_seq = Some(seq);
                        }
                        Some("anchor") => {
                            let state: Value = serde_json::from_str(
                                l["entry"]["after_state"].as_str().ok_or("anchor state")?,
                            )
                            .map_err(|e| e.to_string())?;
                            let root = hash32(&state["merkle_root"])?;
                            let count = state["records"].as_u64().ok_or("records")?;
                            let subtrees = match l.get("subtree_height") {
                                None => None,
                                Some(k) => {
                                    let k = k.as_u64().filter(|k| *k < 64).ok_or("height")? as u32;
                                    let roots = proof(&l["subtree_roots"])?;
                                    if roots.len() as u64 != count.div_ceil(1 << k)
                                        || mth(&roots) != root
                                    {
                                        return Err(format!("anchor {seq}'s subtree roots"));
                                    }
                                    Some((k, roots))
                                }
                            };
                            anchors.insert(
                                l["entry"]["entity_id"].as_str().unwrap_or("").to_string(),
                                (root, count, seq, subtrees),
                            );
                        }
                        _ => checked += 1,
                    }
                }
                "record" => {
                    let text = l["record"].as_str().ok_or("record text")?;
                    let record: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
                    if record["tenant_id"] != tenant {
                        return Err("a record of another tenant".into());
                    }
                    let (root, count, seq, subtrees) = anchors
                        .get(l["anchor"].as_str().unwrap_or(""))
                        .ok_or("a record whose anchor is not in the bundle")?;
                    if Some(*seq) >= request_seq {
                        return Err("a record anchored after the request".into());
                    }
                    let index = l["leaf_index"].as_u64().ok_or("leaf_index")?;
                    // With subtree roots the proof leads to the root of the record's subtree
                    // of 2^k leaves (the last one holds what is left).
                    let (at, width, to) = match subtrees {
                        None => (index, *count, Some(root)),
                        Some((k, roots)) => {
                            let j = index >> k;
                            let width = (1u64 << k).min(count.saturating_sub(j << k));
                            (index - (j << k), width, roots.get(j as usize))
                        }
                    };
                    let path = proof(&l["proof"])?;
                    if l["leaf_count"].as_u64() != Some(*count)
                        || index >= *count
                        || !to.is_some_and(|to| {
                            included(sha(&[text.as_bytes()]), at, width, &path, to)
                        })
                    {
                        return Err(format!("record {} is not in its batch", l["name"]));
                    }
                    checked += 1;
                }
                other => return Err(format!("unexpected line type {other}")),
            }
        }
        let mut names: Vec<&str> = lines
            .iter()
            .filter(|l| l["type"] == "record")
            .map(|l| l["name"].as_str().unwrap_or(""))
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        if names.len() != n {
            return Err("a record appears twice".into());
        }
        Ok(checked)
    }
}

/// One OTLP/JSON span, written here from the OTLP/JSON encoding (hex ids, nanos as strings).
fn span(
    trace: &str,
    id: &str,
    parent: Option<&str>,
    name: &str,
    (start_ms, end_ms): (u64, u64),
    failed: bool,
    attrs: &[(&str, Value)],
) -> Value {
    let base: u64 = 1_764_000_000_000; // ms, 2025-11-24
    let attributes: Vec<Value> = attrs
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => json!({"stringValue": s}),
                Value::Number(n) => json!({"intValue": n.to_string()}),
                Value::Bool(b) => json!({"boolValue": b}),
                other => panic!("no OTLP value for {other}"),
            };
            json!({"key": k, "value": value})
        })
        .collect();
    let mut s = json!({
        "traceId": trace, "spanId": id, "name": name, "kind": 1,
        "startTimeUnixNano": ((base + start_ms) * 1_000_000).to_string(),
        "endTimeUnixNano": ((base + end_ms) * 1_000_000).to_string(),
        "attributes": attributes,
        "status": {"code": if failed { 2 } else { 1 }},
    });
    if let Some(p) = parent {
        s["parentSpanId"] = json!(p);
    }
    s
}

async fn post_traces(app: &TestApp, key: &str, body: &[u8]) -> u16 {
    app.client
        .post(format!("{}/v1/traces", app.address))
        .header("content-type", "application/json")
        .bearer_auth(key)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Runs and steps of a tenant as text rows, the fields the OTLP mapping carries (read from
/// the database directly; NULL as `~`).
async fn otlp_fields(app: &TestApp, tenant: &str) -> (Vec<String>, Vec<String>) {
    let row = |cols: &[&str]| {
        cols.iter()
            .map(|c| format!("COALESCE(CAST({c} AS TEXT), '~')"))
            .collect::<Vec<_>>()
            .join(" || '|' || ")
    };
    let runs = app
        .store
        .query_strings(&format!(
            "SELECT {} FROM llm_runs WHERE tenant_id = '{tenant}' ORDER BY run_id",
            row(&[
                "run_id",
                "trace_id",
                "provider",
                "model",
                "input_tokens",
                "output_tokens",
                "cost_cents",
                "execution_status",
                "started_at",
                "completed_at",
                "source",
                "human_actor_id",
                "agent_id",
                "system_id",
                "origin",
                "session_id",
                "cache_read_tokens",
                "cache_creation_tokens",
                "attributes",
            ])
        ))
        .await;
    let steps = app
        .store
        .query_strings(&format!(
            "SELECT {} FROM trace_steps WHERE tenant_id = '{tenant}' ORDER BY trace_id, step_index",
            row(&[
                "trace_id",
                "step_index",
                "occurred_at",
                "skill_name",
                "status",
                "outcome_category",
                "cost_cents",
                "duration_ms",
                "span_id",
                "provider",
                "request_model",
                "response_model",
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_creation_tokens",
                "session_id",
                "attributes",
            ])
        ))
        .await;
    (runs, steps)
}

/// An OTLP_JSON export of runs ingested through OTLP, sent back to `/v1/traces` of another
/// tenant, gives that tenant the same runs and steps.
async fn runs_exported_as_otlp_json_ingest_back_the_same(backend: Backend) {
    use runledger::auth;
    use runledger::domain::Role;
    let app = TestApp::spawn(backend).await;
    let db = app.db();
    for t in ["otlp-a", "otlp-b"] {
        auth::ensure_tenant(db, t, t, &[]).await.unwrap();
    }
    let key = |t: &'static str, role: Role| async move {
        auth::create_key(db, t, role, None, None).await.unwrap().0
    };
    let (ingest_a, auditor_a, ingest_b) = (
        key("otlp-a", Role::Ingest).await,
        key("otlp-a", Role::Auditor).await,
        key("otlp-b", Role::Ingest).await,
    );
    let t1 = "0af7651916cd43dd8448eb211c80319c";
    let t2 = "4bf92f3577b34da6a3ce929d0e0e4736";
    let spans1 = json!([
        span(
            t1,
            "00f067aa0ba902b7",
            None,
            "invoke_agent support",
            (0, 900),
            false,
            &[
                ("gen_ai.operation.name", json!("invoke_agent")),
                ("gen_ai.provider.name", json!("openai")),
                ("gen_ai.response.model", json!("gpt-4o")),
                ("gen_ai.agent.id", json!("support-bot")),
                ("gen_ai.conversation.id", json!("conv-7")),
                ("gen_ai.usage.input_tokens", json!(200)),
                ("gen_ai.usage.output_tokens", json!(50)),
                ("runledger.run.id", json!("otlp-run-1")),
                ("deployment.ring", json!("canary")),
            ]
        ),
        span(
            t1,
            "b7ad6b7169203331",
            Some("00f067aa0ba902b7"),
            "chat gpt-4o",
            (10, 400),
            false,
            &[
                ("gen_ai.provider.name", json!("openai")),
                ("gen_ai.request.model", json!("gpt-4o")),
                ("gen_ai.response.model", json!("gpt-4o-2024-08-06")),
                ("gen_ai.usage.input_tokens", json!(150)),
                ("gen_ai.usage.output_tokens", json!(40)),
                ("gen_ai.usage.cache_read.input_tokens", json!(30)),
                ("runledger.cost_cents", json!(3)),
                ("http.retries", json!(2)),
            ]
        ),
        span(
            t1,
            "c3d4e5f6a7b80912",
            Some("b7ad6b7169203331"),
            "execute_tool lookup",
            (450, 800),
            true,
            &[
                ("gen_ai.tool.name", json!("lookup_order")),
                ("error.type", json!("timeout")),
            ]
        ),
    ]);
    let spans2 = json!([
        span(
            t2,
            "1111111111111111",
            None,
            "workflow",
            (5000, 6000),
            true,
            &[
                ("enduser.id", json!("alice")),
                ("gen_ai.request.model", json!("claude-3")),
            ]
        ),
        span(
            t2,
            "2222222222222222",
            Some("1111111111111111"),
            "step one",
            (5100, 5200),
            false,
            &[]
        ),
    ]);
    for (trace, spans) in [(t1, spans1), (t2, spans2)] {
        let body = json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "agent-svc"}}]},
            "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]
        }]});
        assert_eq!(
            post_traces(&app, &ingest_a, body.to_string().as_bytes()).await,
            200,
            "trace {trace}"
        );
    }
    let (runs_a, steps_a) = otlp_fields(&app, "otlp-a").await;
    assert_eq!(
        (runs_a.len(), steps_a.len()),
        (2, 3),
        "{runs_a:?} {steps_a:?}"
    );

    let q = "mutation { requestExport(scope: {runs: {}}, format: OTLP_JSON) { exportId format } }";
    let d = app.query(&auditor_a, q, json!({})).await;
    assert_eq!(d["requestExport"]["format"], json!("OTLP_JSON"));
    let id = d["requestExport"]["exportId"].as_str().unwrap().to_string();
    let done = finished(&app, &auditor_a, &id).await;
    assert_eq!(done["status"], json!("COMPLETED"), "{done}");
    let got = download(&app.address, Some(&auditor_a), &id, None).await;
    assert_eq!(got.status, 200);
    assert_eq!(header(&got, "content-type"), "application/x-ndjson");
    assert!(header(&got, "content-disposition").contains(&format!("{id}.jsonl")));
    assert_eq!(done["checksum"], json!(sha256_hex(&got.body)));
    let text = std::str::from_utf8(&got.body).unwrap();
    let requests: Vec<&str> = text.lines().collect();
    assert_eq!(requests.len(), 2, "one request per run");
    assert!(text.ends_with('\n'));
    for line in &requests {
        let r: Value = serde_json::from_str(line).unwrap();
        let spans = &r["resourceSpans"][0]["scopeSpans"][0]["spans"];
        // OTLP/JSON: hex ids, nanos as strings.
        assert!(spans[0]["traceId"].as_str().unwrap().len() == 32, "{line}");
        assert!(spans[0]["startTimeUnixNano"].is_string(), "{line}");
        assert_eq!(
            post_traces(&app, &ingest_b, line.as_bytes()).await,
            200,
            "{line}"
        );
    }
    let (runs_b, steps_b) = otlp_fields(&app, "otlp-b").await;
    assert_eq!(runs_b, runs_a);
    assert_eq!(steps_b, steps_a);

    let (code, message) = app
        .query_error(
            Some(&auditor_a),
            "mutation { requestExport(scope: {ledger: {}}, format: OTLP_JSON) { exportId } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("OTLP_JSON"), "{message}");
}
both!(runs_exported_as_otlp_json_ingest_back_the_same);

/// The seeder's exports are the product's own: each was requested through the export path by
/// the tenant's auditor key (an EXPORT_REQUESTED entry each), the completed ones download with
/// their checksum and verify, a queued one is built by the server's workers, and the first run's
/// export view says its evidence still matches its bundle.
async fn seeded_exports_are_requested_built_and_verifiable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let auditor = app.seeded_auditor(TENANT, 300, 2, 0, 3).await;
    let key = verifier_key(&app);
    let listed = exports(&app, &auditor).await;
    let requested = app
        .store
        .query_strings(&format!(
            "SELECT entity_id FROM audit_ledger WHERE tenant_id = '{TENANT}' \
             AND event_type = 'EXPORT_REQUESTED' ORDER BY entity_id"
        ))
        .await;
    let mut ids: Vec<String> = listed
        .iter()
        .map(|e| e["exportId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(
        ids, requested,
        "one EXPORT_REQUESTED entry per listed export"
    );
    // Run 0, about 1 % of the other runs, the ledger's access trail and the failed runs.
    assert!(listed.len() >= 3, "{listed:?}");
    let formats: std::collections::BTreeSet<&str> = listed
        .iter()
        .map(|e| e["format"].as_str().unwrap())
        .collect();
    assert!(
        formats.contains("BUNDLE") && formats.contains("CSV"),
        "{formats:?}"
    );
    assert!(
        listed
            .iter()
            .any(|e| e["scope"].as_str().unwrap().starts_with("ledger:"))
    );
    let (mut completed, mut cancelled) = (0, 0);
    for e in &listed {
        let id = e["exportId"].as_str().unwrap();
        let e = finished(&app, &auditor, id).await;
        match e["status"].as_str().unwrap() {
            // A cancelled export is FAILED with the canceller named (docs/exports.md).
            "FAILED" => {
                let why = e["build"]["failureReason"].as_str().unwrap_or_default();
                assert!(why.starts_with("cancelled by key:"), "{id}: {e}");
                cancelled += 1;
                continue;
            }
            "COMPLETED" => completed += 1,
            other => panic!("seeded export {id} is {other}: {e}"),
        }
        let got = download(&app.address, Some(&auditor), id, None).await;
        assert_eq!(got.status, 200);
        assert_eq!(Some(sha256_hex(&got.body).as_str()), e["checksum"].as_str());
        match e["format"].as_str().unwrap() {
            "BUNDLE" => {
                let report = check(&got.body, &key);
                assert_eq!(report.status, "VERIFIED", "{id}: {:?}", report.problems);
                independent::verify(&got.body, &key).expect("the independent verifier accepts it");
            }
            "CSV" => assert!(read_csv(std::str::from_utf8(&got.body).unwrap()).len() > 1),
            _ => assert!(
                lines(&got.body)
                    .iter()
                    .all(|l| l["resourceSpans"].is_array())
            ),
        }
    }
    assert!(completed >= 3 && cancelled >= 1, "{listed:?}");
    let first = run_ids(&app, &auditor).await[0].clone();
    let d = app
        .query(
            &auditor,
            "query($r: String!) { llmRun(runId: $r) { export { latestExportMatchesBundle exports { status format } } } }",
            json!({"r": first}),
        )
        .await;
    assert_eq!(
        d["llmRun"]["export"]["latestExportMatchesBundle"],
        json!(true)
    );
    assert_eq!(
        d["llmRun"]["export"]["exports"][0],
        json!({"status": "COMPLETED", "format": "BUNDLE"})
    );
}
both!(seeded_exports_are_requested_built_and_verifiable);

/// A bundle of runs by filter walks them batch by batch, many chunks of them: every run of the
/// scope is in it exactly once, with every step, and it verifies. 1,120 runs arrive in
/// anchored batches of different sizes (a seeded batch of 500, then 7, 31, 113… runs per
/// ingest request), so the walk's chunks of 500 end in the middle of batches.
async fn a_bundle_of_many_runs_holds_each_run_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let auditor = app.seeded_auditor(TENANT, 500, 1, 0, 8).await;
    let (ingest, _) = runledger::auth::create_key(
        app.db(),
        TENANT,
        runledger::domain::Role::Ingest,
        None,
        None,
    )
    .await
    .unwrap();
    let mut n = 0;
    for size in [7, 31, 113, 269, 200] {
        let runs: Vec<Value> = (0..size)
            .map(|i| {
                n += 1;
                json!({
                    "runId": format!("many-{n:05}"), "provider": "openai", "model": "gpt-4o",
                    "inputTokens": 10, "outputTokens": 5, "costCents": 1,
                    "executionStatus": "SUCCEEDED", "startedAt": "2026-05-01T10:00:00Z",
                    "completedAt": "2026-05-01T10:00:02Z", "traceId": format!("many-trace-{n:05}"),
                    "steps": [{"stepIndex": 0, "skillName": "search", "status": "SUCCEEDED",
                               "outcomeCategory": "OK", "costCents": 1, "durationMs": 3,
                               "timestamp": format!("2026-05-01T10:00:01.{i:03}Z")}]
                })
            })
            .collect();
        app.query(
            &ingest,
            "mutation($runs: [RunInput!]!) { ingestRuns(runs: $runs) { storedCount } }",
            json!({ "runs": runs }),
        )
        .await;
    }
    let body = verified_bundle(&app, &auditor, json!({"runs": {}})).await;
    let mut runs: Vec<String> = Vec::new();
    let mut steps = 0;
    for line in lines(&body) {
        match line["table"].as_str() {
            Some("llm_runs") => runs.push(line["name"].as_str().unwrap().to_string()),
            Some("trace_steps") => steps += 1,
            _ => {}
        }
    }
    let total = runs.len();
    runs.sort();
    runs.dedup();
    assert_eq!(runs.len(), total, "no run twice");
    let stored: Vec<String> = app
        .store
        .query_strings(&format!(
            "SELECT run_id FROM llm_runs WHERE tenant_id = '{TENANT}' ORDER BY run_id"
        ))
        .await
        .into_iter()
        .map(|r| format!("llm_runs:{r}"))
        .collect();
    assert_eq!(stored.len(), 500 + n);
    let mut expected = stored.clone();
    expected.sort();
    assert_eq!(runs, expected, "every run of the tenant, once");
    let stored_steps = app
        .store
        .query_i64(&format!(
            "SELECT COUNT(*) FROM trace_steps WHERE tenant_id = '{TENANT}'"
        ))
        .await[0];
    assert_eq!(steps, stored_steps);
    // Every anchor line of a bundle of all runs lists its batch's leaves (height 0) when the
    // batch has more than one, and no record carries an audit path.
    let all = lines(&body);
    for l in all.iter().filter(|l| l["type"] == json!("anchor")) {
        if l.get("subtree_height").is_some() {
            assert_eq!(l["subtree_height"], json!(0), "{l}");
        }
    }
    assert!(
        all.iter()
            .filter(|l| l["type"] == json!("record"))
            .all(|l| l["proof"] == json!([]))
    );
    independent::verify(&body, &verifier_key(&app)).expect("the independent verifier accepts it");

    // A bundle of a part of the runs proves its records to subtrees of two or more leaves:
    // audit paths within their subtree, through roots its anchor lines list.
    let body = verified_bundle(&app, &auditor, json!({"runs": {"model": "gpt-4o"}})).await;
    independent::verify(&body, &verifier_key(&app)).expect("the independent verifier accepts it");
    let part = lines(&body);
    let heights: Vec<u64> = part
        .iter()
        .filter_map(|l| l.get("subtree_height").and_then(Value::as_u64))
        .collect();
    assert!(
        heights.iter().any(|h| *h > 0),
        "subtrees higher than a leaf: {heights:?}"
    );
    assert!(
        part.iter()
            .any(|l| l["type"] == json!("record") && l["proof"][0].is_string()),
        "records with paths inside their subtrees"
    );
    let gpt4o = app
        .store
        .query_i64(&format!(
            "SELECT COUNT(*) FROM llm_runs WHERE tenant_id = '{TENANT}' AND model = 'gpt-4o'"
        ))
        .await[0];
    let exported = part
        .iter()
        .filter(|l| l["table"] == json!("llm_runs"))
        .count();
    assert_eq!(exported as i64, gpt4o);
}
both!(a_bundle_of_many_runs_holds_each_run_once);
