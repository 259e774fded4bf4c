//! The `runledger` program as a user runs it: `schema`, `migrate`, `seed`, `keys create`, and
//! `serve --demo` answering GraphQL and shutting down gracefully on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::both;
use crate::helpers::{Backend, TestDb};

/// The program, with its checkpoint signing key and its export directory in a temporary
/// directory rather than in the working directory (a test may pass its own
/// `--signing-key-file` or `--export-dir`).
pub(crate) fn runledger() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runledger"));
    let tmp = std::env::temp_dir();
    c.env(
        "RUNLEDGER_SIGNING_KEY_FILE",
        tmp.join(format!("runledger_test_{}.key", std::process::id())),
    );
    c.env(
        "RUNLEDGER_EXPORT_DIR",
        tmp.join(format!("runledger_test_exports_{}", std::process::id())),
    );
    c
}

/// Runs a command that must fail; returns its stderr.
pub(crate) fn run_err(args: &[&str]) -> String {
    let out = runledger().args(args).output().expect("run runledger");
    assert!(
        !out.status.success(),
        "runledger {args:?} should have failed"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn run_ok(args: &[&str]) -> String {
    let out = runledger().args(args).output().expect("run runledger");
    assert!(
        out.status.success(),
        "runledger {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

#[test]
fn schema_command_prints_the_checked_in_sdl() {
    let sdl = run_ok(&["schema"]);
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert!(
        sdl == checked_in,
        "`runledger schema` differs from schema.graphql"
    );
}

async fn seed_and_keys(backend: Backend) {
    let a = TestDb::new(backend).await;
    let b = TestDb::new(backend).await;
    let args = [
        "--tenants",
        "2",
        "--runs",
        "15",
        "--steps-per-run",
        "3",
        "--seed",
        "9",
    ];
    let mut first = vec!["seed", "--database-url", a.url.as_str()];
    first.extend(args);
    let mut second = vec!["seed", "--database-url", b.url.as_str()];
    second.extend(args);
    let tenants_a = run_ok(&first);
    let tenants_b = run_ok(&second);
    assert_eq!(tenants_a.lines().count(), 2, "{tenants_a}");
    assert_eq!(tenants_a, tenants_b, "the same seed names the same tenants");
    // Seeding ends with a checkpoint of every ledger: a full verification is clean and covered.
    let (code, report) = verify(&["--database-url", a.url.as_str()]);
    assert_eq!(code, 0, "{report}");
    // Two tenants, and the platform ledger that anchors the seeded global records.
    assert_eq!(
        a.query_i64("SELECT COUNT(DISTINCT tenant_id) FROM ledger_checkpoints")
            .await,
        vec![3]
    );
    // The same seed gives the same evidence.
    let sql = "SELECT run_id || '/' || model || '/' || execution_status || '/' || input_tokens FROM llm_runs ORDER BY run_id";
    assert_eq!(a.query_strings(sql).await, b.query_strings(sql).await);
    assert_eq!(a.query_i64("SELECT COUNT(*) FROM llm_runs").await, vec![30]);
    assert_eq!(
        a.query_i64("SELECT COUNT(*) FROM trace_steps").await,
        vec![90]
    );
    // Seeding the same tenants again is refused, and writes nothing.
    assert!(run_err(&first).contains("already exists"));
    assert_eq!(a.query_i64("SELECT COUNT(*) FROM llm_runs").await, vec![30]);

    // keys create refuses a tenant that does not exist, naming it and the remedy...
    let refused = run_err(&[
        "keys",
        "create",
        "--database-url",
        a.url.as_str(),
        "--tenant",
        "newco",
        "--role",
        "viewer",
    ]);
    assert!(
        refused.contains("tenant `newco` does not exist")
            && refused.contains("runledger tenants create --id newco"),
        "{refused}"
    );
    run_ok(&[
        "tenants",
        "create",
        "--database-url",
        a.url.as_str(),
        "--id",
        "newco",
    ]);
    // ... and prints the key alone for one that does.
    let key = run_ok(&[
        "keys",
        "create",
        "--database-url",
        a.url.as_str(),
        "--tenant",
        "newco",
        "--role",
        "viewer",
    ]);
    let key = key.trim();
    assert!(
        key.starts_with("rl_") && key.len() == 3 + 12 + 1 + 64,
        "{key}"
    );
    let stored = a
        .query_strings("SELECT secret_hash FROM api_keys WHERE tenant_id = 'newco'")
        .await;
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].contains(&key[16..]),
        "the secret is stored hashed"
    );
    assert!(
        run_err(&[
            "keys",
            "create",
            "--database-url",
            a.url.as_str(),
            "--tenant",
            "bad tenant!",
            "--role",
            "viewer",
        ])
        .contains("tenant id")
    );
    run_ok(&["migrate", "--database-url", a.url.as_str()]);
}
both!(seed_and_keys);

/// A `serve --demo` child process and what it printed.
pub(crate) struct Served {
    child: std::process::Child,
    graphiql: String,
    pub(crate) base: String,
    pub(crate) key: String,
}

impl Served {
    /// Starts `runledger serve --demo` in `dir` (on 127.0.0.1:0 unless `extra` says
    /// `--listen`) and reads its two stdout lines.
    pub(crate) fn start(dir: &std::path::Path, extra: &[&str]) -> Served {
        let listen: &[&str] = if extra.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = runledger()
            .args(["serve", "--demo"])
            .args(listen)
            .args(extra)
            .env_remove("RUNLEDGER_DATABASE_URL")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url_line = lines.next().unwrap().unwrap();
        let dashboard_line = lines.next().unwrap().unwrap();
        let key_line = lines.next().unwrap().unwrap();
        let graphiql = url_line.strip_prefix("GraphiQL: ").unwrap().to_string();
        let key = key_line.rsplit(' ').next().unwrap().to_string();
        let base = graphiql.trim_end_matches("/graphiql").to_string();
        assert_eq!(dashboard_line, format!("Dashboard: {base}/dashboard"));
        Served {
            child,
            graphiql,
            base,
            key,
        }
    }

    pub(crate) async fn query(&self, query: &str) -> serde_json::Value {
        reqwest::Client::new()
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.key)
            .json(&json!({"query": query}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// SIGTERM, then the exit status.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

pub(crate) fn temp_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}_{}", runledger::ids::random_hex(6)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_answers_and_shuts_down_gracefully() {
    let dir = temp_dir("runledger_demo");
    let served = Served::start(&dir, &[]);
    let page = reqwest::get(&served.graphiql)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&served.key),
        "GraphiQL opens ready to send the demo key"
    );
    let body = served
        .query("{ viewer { tenantId role } llmRuns { totalCount } audit { integrity { hashChainValid } } }")
        .await;
    assert_eq!(
        body["data"]["viewer"],
        json!({"tenantId": "demo", "role": "AUDITOR"})
    );
    assert_eq!(body["data"]["llmRuns"]["totalCount"], json!(200));
    assert_eq!(
        body["data"]["audit"]["integrity"]["hashChainValid"],
        json!(true)
    );
    // The default database is a SQLite file in the working directory.
    assert!(dir.join("runledger.db").exists());
    assert_eq!(served_key_file(&dir), served.key, "the demo key is kept");
    let exit = served.stop();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    // The shutdown ended with a checkpoint covering everything, the verification above included.
    let db_path = dir.join("runledger.db").display().to_string();
    let (code, report) = verify(&["--database-url", &db_path, "--tenant", "demo"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ledgers"][0]["status"], json!("VERIFIED"));

    // Started again on the same database (listening on `localhost`): the same key, kept
    // owner-only beside the database, and the same data.
    let first_key = served_key_file(&dir);
    let served = Served::start(&dir, &["--listen", "localhost:0"]);
    assert_eq!(served.key, first_key);
    assert!(
        served.base.starts_with("http://127.0.0.1:"),
        "{}",
        served.base
    );
    let body = served.query("{ llmRuns { totalCount } }").await;
    assert_eq!(body["data"]["llmRuns"]["totalCount"], json!(200));
    assert!(served.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The demo key kept in `dir` (owner-only).
fn served_key_file(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("runledger-demo.key");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::read_to_string(&file).unwrap().trim().to_string()
}

async fn operators_write_global_system_records(backend: Backend) {
    let app = crate::helpers::TestApp::spawn(backend).await;
    let keys = crate::fixture::load(&app).await;
    let dir = temp_dir("runledger_cli_records");
    let file = dir.join("records.json");
    let record = |id: &str| {
        json!({"recordId": id, "component": "gateway", "eventType": "CERT_ROTATED", "severity": "INFO",
               "summary": "TLS certificate rotated", "causedBy": "cert-manager",
               "occurredAt": "2026-05-01T10:00:00Z", "details": {"serial": "01ab"}})
    };
    std::fs::write(&file, json!([record("g-cli-1")]).to_string()).unwrap();
    let path = file.display().to_string();
    let url = app.store.url.clone();
    let out = run_ok(&[
        "ingest",
        "system-records",
        "--database-url",
        &url,
        "--file",
        &path,
        "--global",
    ]);
    assert!(out.starts_with("stored g-cli-1 "), "{out}");
    let again = run_ok(&[
        "ingest",
        "system-records",
        "--database-url",
        &url,
        "--file",
        &path,
        "--global",
    ]);
    assert!(again.starts_with("present g-cli-1 "), "{again}");

    // Every tenant sees the global record.
    let q = r#"{ systemRecords(filter: {eventType: "CERT_ROTATED"}) { nodes { recordId isGlobal details } } }"#;
    for key in [&keys.alpha_viewer, &keys.beta_auditor] {
        let d = app.query(key, q, json!({})).await;
        assert_eq!(
            d["systemRecords"]["nodes"],
            json!([{"recordId": "g-cli-1", "isGlobal": true, "details": {"serial": "01ab"}}])
        );
    }
    // A tenant's records through the same path stay that tenant's.
    std::fs::write(&file, json!([record("t-cli-1")]).to_string()).unwrap();
    run_ok(&[
        "ingest",
        "system-records",
        "--database-url",
        &url,
        "--file",
        &path,
        "--tenant",
        "alpha",
    ]);
    let tenant_q = r#"{ systemRecords(filter: {scope: TENANT, eventType: "CERT_ROTATED"}) { nodes { recordId } } }"#;
    let d = app.query(&keys.alpha_viewer, tenant_q, json!({})).await;
    assert_eq!(
        d["systemRecords"]["nodes"],
        json!([{"recordId": "t-cli-1"}])
    );
    let d = app.query(&keys.beta_auditor, tenant_q, json!({})).await;
    assert_eq!(d["systemRecords"]["nodes"], json!([]));
    // The platform ledger is no tenant.
    assert!(
        run_err(&[
            "ingest",
            "system-records",
            "--database-url",
            &url,
            "--file",
            &path,
            "--tenant",
            "_platform",
        ])
        .contains("tenant id")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
both!(operators_write_global_system_records);

/// Runs `runledger verify` and returns its exit code and JSON report.
fn verify(args: &[&str]) -> (i32, serde_json::Value) {
    let out = runledger()
        .arg("verify")
        .args(args)
        .output()
        .expect("run runledger verify");
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), report)
}

/// `runledger verify`: 3 with an unanchored tail, 0 when fully covered, 1 on an anomaly (here a
/// rollback only the auditor's kept checkpoint reveals), 2 when it cannot run.
async fn verify_command_exit_codes_and_rollback(backend: Backend) {
    let l = crate::tamper::setup(backend).await;
    let url = l.app.store.url.clone();
    let key = l.app.keys.signer.verifier_key();
    let base = ["--database-url", url.as_str(), "--public-key", key.as_str()];
    let alpha = [&base[..], &["--tenant", "alpha"]].concat();

    let (code, report) = verify(&alpha);
    assert_eq!(code, 3, "{report}");
    let r = &report["ledgers"][0];
    assert_eq!(r["tenantId"], json!("alpha"));
    assert_eq!(r["status"], json!("VERIFIED_UNANCHORED_TAIL"));
    assert_eq!(r["entriesChecked"], json!(l.head));
    assert_eq!(r["unanchoredEntries"], json!(l.head - l.s2));
    assert_eq!(r["anomalies"], json!([]));

    let size = l.app.checkpoint("alpha").await;
    let (code, report) = verify(&alpha);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ledgers"][0]["status"], json!("VERIFIED"));
    // --record leaves the verification in the ledger it verified.
    let (code, _) = verify(&[&alpha[..], &["--record"]].concat());
    assert_eq!(code, 0);
    let last = l
        .app
        .store
        .query_strings("SELECT event_type || ' ' || actor_id FROM audit_ledger WHERE tenant_id = 'alpha' ORDER BY seq DESC LIMIT 1")
        .await;
    assert_eq!(last, vec!["LEDGER_VERIFIED runledger verify"]);

    // Every ledger when no tenant is named: beta has no checkpoint yet.
    let (code, report) = verify(&base);
    assert_eq!(code, 3, "{report}");
    let tenants: Vec<&str> = report["ledgers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenantId"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, vec!["alpha", "beta", "_platform"]);

    // The auditor keeps the newest checkpoint; later the database is restored to the state
    // of the first checkpoint (entries, checkpoints and the evidence written since).
    let kept = l
        .app
        .store
        .query_strings(&format!(
            "SELECT signed_note FROM ledger_checkpoints WHERE tenant_id = 'alpha' AND tree_size = {size}"
        ))
        .await
        .remove(0);
    let dir = temp_dir("runledger_verify");
    let kept_file = dir.join("alpha.checkpoint");
    std::fs::write(&kept_file, &kept).unwrap();
    l.attacker().await;
    l.sql(&format!(
        "DELETE FROM audit_ledger WHERE tenant_id = 'alpha' AND seq > {}",
        l.s1
    ))
    .await;
    l.sql(&format!(
        "DELETE FROM ledger_checkpoints WHERE tenant_id = 'alpha' AND tree_size > {}",
        l.s1
    ))
    .await;
    l.sql("DELETE FROM trace_steps WHERE tenant_id = 'alpha' AND trace_id IN ('trace-x1', 'trace-x2', 'trace-x3')").await;
    l.sql("DELETE FROM llm_runs WHERE tenant_id = 'alpha' AND run_id IN ('x1', 'x2', 'x3')")
        .await;
    // Consistent with itself: only the kept checkpoint tells.
    let (code, report) = verify(&alpha);
    assert_eq!(code, 0, "{report}");
    let kept_path = kept_file.display().to_string();
    let (code, report) = verify(&[&alpha[..], &["--trusted-checkpoint", &kept_path]].concat());
    assert_eq!(code, 1, "{report}");
    let r = &report["ledgers"][0];
    assert_eq!(r["status"], json!("BROKEN"));
    assert_eq!(r["trustedCheckpointSize"], json!(size));
    assert_eq!(
        r["anomalies"],
        json!([{"kind": "ROLLBACK", "seq": l.s1 + 1, "seqEnd": size, "record": null,
                "detail": format!("the trusted checkpoint of size {size} covers {size} entries, the ledger has {}", l.s1)}])
    );
    // The tenant comes from the kept checkpoint's origin when not named.
    let (code, report) = verify(&[&base[..], &["--trusted-checkpoint", &kept_path]].concat());
    assert_eq!(
        (code, report["ledgers"][0]["tenantId"].clone()),
        (1, json!("alpha"))
    );

    // Cannot run: no key to trust, or a checkpoint signed by someone else.
    let missing = dir.join("absent.key").display().to_string();
    let out = runledger()
        .args([
            "verify",
            "--database-url",
            &url,
            "--signing-key-file",
            &missing,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--public-key"));
    let stranger = runledger::ledger::note::NoteSigner::generate("runledger")
        .unwrap()
        .verifier_key();
    let (code, _) = verify(&[
        "--database-url",
        &url,
        "--public-key",
        &stranger,
        "--trusted-checkpoint",
        &kept_path,
    ]);
    assert_eq!(code, 2);
    let _ = std::fs::remove_dir_all(&dir);
}
both!(verify_command_exit_codes_and_rollback);

#[test]
fn keys_public_prints_the_verifier_key_of_an_owner_only_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("runledger_keys");
    let file = dir.join("nested").join("signing.key");
    let path = file.display().to_string();
    let first = run_ok(&["keys", "public", "--signing-key-file", &path]);
    let second = run_ok(&["keys", "public", "--signing-key-file", &path]);
    assert_eq!(first, second, "the key is created once, then reused");
    let parts: Vec<&str> = first.trim().splitn(3, '+').collect();
    assert_eq!(parts.len(), 3, "{first}");
    assert_eq!(parts[0], "runledger");
    assert_eq!(parts[1].len(), 8);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A key file others can read is refused.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(run_err(&["keys", "public", "--signing-key-file", &path]).contains("chmod 600"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two server processes append to the same tenant of one PostgreSQL database at the same
/// time: one chain, no gap, no duplicate seq, every batch anchored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_append_to_one_chain() {
    if crate::helpers::postgres_url().is_none() {
        return;
    }
    let store = TestDb::new(Backend::Postgres).await;
    runledger::auth::ensure_tenant(&store.db, "shared", "Shared", &[])
        .await
        .unwrap();
    let (ingest_key, _) = runledger::auth::create_key(
        &store.db,
        "shared",
        runledger::domain::Role::Ingest,
        None,
        None,
    )
    .await
    .unwrap();
    let dir = temp_dir("runledger_two");
    let key_file = dir.join("signing.key").display().to_string();
    let start = || {
        let mut child = runledger()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &store.url,
            ])
            .args(["--signing-key-file", &key_file])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let line = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .next()
            .unwrap()
            .unwrap();
        let base = line
            .strip_prefix("GraphiQL: ")
            .unwrap()
            .trim_end_matches("/graphiql")
            .to_string();
        (child, base)
    };
    let servers = [start(), start()];
    let client = reqwest::Client::new();
    let requests_per_server = 25;
    let mut tasks = Vec::new();
    for (s, (_, base)) in servers.iter().enumerate() {
        for i in 0..requests_per_server {
            let client = client.clone();
            let url = format!("{base}/graphql");
            let key = ingest_key.clone();
            tasks.push(tokio::spawn(async move {
                let run_id = format!("p{s}-{i}");
                let body = json!({
                    "query": "mutation($runs: [RunInput!]!) { ingestRuns(runs: $runs) { storedCount } }",
                    "variables": {"runs": [{
                        "runId": run_id, "provider": "openai", "model": "gpt-4o",
                        "inputTokens": 1, "outputTokens": 1, "costCents": 0,
                        "executionStatus": "SUCCEEDED", "startedAt": "2026-05-01T10:00:00Z"
                    }]}
                });
                let resp: serde_json::Value = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(resp["data"]["ingestRuns"]["storedCount"], json!(1), "{resp}");
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    for (child, _) in servers {
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut child = child;
        assert!(child.wait().unwrap().success());
    }
    let total = 2 * requests_per_server;
    let seqs = store
        .query_i64("SELECT seq FROM audit_ledger WHERE tenant_id = 'shared' ORDER BY seq")
        .await;
    // TENANT_CREATED, KEY_CREATED, then one anchor per request.
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert_eq!(
        store
            .query_i64("SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'shared' AND category = 'ANCHOR'")
            .await,
        vec![total]
    );
    // Both processes signed with the one key file; the chain verifies and is covered.
    let (code, report) = verify(&[
        "--database-url",
        &store.url,
        "--tenant",
        "shared",
        "--signing-key-file",
        &key_file,
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ledgers"][0]["anchorsChecked"], json!(total));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `tenants create`, `keys rotate` and `keys revoke` from the command line, each recorded.
async fn tenants_and_key_lifecycle_from_the_command_line(backend: Backend) {
    let db = TestDb::new(backend).await;
    let url = db.url.as_str();
    assert_eq!(
        run_ok(&[
            "tenants",
            "create",
            "--database-url",
            url,
            "--id",
            "acme",
            "--frameworks",
            "SOC2,HIPAA"
        ])
        .trim(),
        "acme"
    );
    assert!(
        run_err(&["tenants", "create", "--database-url", url, "--id", "acme"])
            .contains("already exists")
    );
    let key = run_ok(&[
        "keys",
        "create",
        "--database-url",
        url,
        "--tenant",
        "acme",
        "--role",
        "viewer",
    ]);
    let id = &key.trim()[3..15];
    let rotated = run_ok(&[
        "keys",
        "rotate",
        "--database-url",
        url,
        "--tenant",
        "acme",
        "--key-id",
        id,
    ]);
    let new_id = &rotated.trim()[3..15];
    assert_ne!(id, new_id);
    assert_eq!(
        run_ok(&[
            "keys",
            "revoke",
            "--database-url",
            url,
            "--tenant",
            "acme",
            "--key-id",
            new_id
        ])
        .trim(),
        format!("revoked {new_id}")
    );
    assert!(
        run_err(&[
            "keys",
            "revoke",
            "--database-url",
            url,
            "--tenant",
            "acme",
            "--key-id",
            new_id
        ])
        .contains("already revoked")
    );
    assert_eq!(
        db.query_i64(
            "SELECT COUNT(*) FROM api_keys WHERE tenant_id = 'acme' AND revoked_at IS NULL"
        )
        .await,
        vec![0]
    );
    assert_eq!(
        db.query_strings(
            "SELECT event_type FROM audit_ledger WHERE tenant_id = 'acme' AND category = 'IDENTITY' ORDER BY seq"
        )
        .await,
        vec!["TENANT_CREATED", "KEY_CREATED", "KEY_ROTATED", "KEY_REVOKED"]
    );
}
both!(tenants_and_key_lifecycle_from_the_command_line);

/// A global system record slipped into the database without an anchor is reported by the
/// platform ledger's verification (every tenant would see it).
async fn a_forged_global_record_is_reported(backend: Backend) {
    let l = crate::tamper::setup(backend).await;
    let url = l.app.store.url.clone();
    let key = l.app.keys.signer.verifier_key();
    let platform = [
        "--database-url",
        url.as_str(),
        "--public-key",
        key.as_str(),
        "--tenant",
        "_platform",
    ];
    // The fixture's global records are anchored in the platform ledger, here fully covered.
    l.app.checkpoint("_platform").await;
    let (code, report) = verify(&platform);
    assert_eq!(code, 0, "{report}");
    l.sql(
        "INSERT INTO system_records (id, tenant_id, component, event_type, severity, summary, details, \
         caused_by, correlation_id, origin, occurred_at, recorded_at, record_hash, anchor_id) \
         SELECT 'forged-global', NULL, component, event_type, severity, 'all is well', details, caused_by, \
         correlation_id, origin, occurred_at, recorded_at, record_hash, NULL \
         FROM system_records WHERE tenant_id IS NULL ORDER BY id LIMIT 1",
    )
    .await;
    let (code, report) = verify(&platform);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        report["ledgers"][0]["anomalies"],
        json!([{"kind": "UNANCHORED_RECORD", "seq": null, "seqEnd": null,
                "record": "system_records:forged-global", "detail": "linked to no anchor entry"}])
    );
}
both!(a_forged_global_record_is_reported);
