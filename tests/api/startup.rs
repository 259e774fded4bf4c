//! What the program refuses to start with, run as a user runs it: a signing key the database's
//! checkpoints do not know (until an explicit rotation), `serve --demo` off loopback or on a
//! database that serves tenants, and CLI commands naming a tenant that does not exist.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use serde_json::json;

use crate::both;
use crate::cli::{Served, run_err, run_ok, runledger, temp_dir};
use crate::helpers::{Backend, TestDb};

/// A `serve` that should refuse to start: returns its exit code and stderr, or fails the test
/// (after killing it) if it started listening instead.
fn serve_refused(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    // Never the default port: a server that wrongly starts must not take a shared one.
    let listen: &[&str] = if args.contains(&"--listen") {
        &[]
    } else {
        &["--listen", "127.0.0.1:0"]
    };
    let mut child = runledger()
        .arg("serve")
        .args(listen)
        .args(args)
        .env_remove("RUNLEDGER_DATABASE_URL")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A started server prints its URL first; a refused one exits, closing stdout.
    let first = BufReader::new(child.stdout.take().unwrap()).lines().next();
    if let Some(Ok(line)) = first {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("serve {args:?} started ({line}) but should have refused");
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), stderr)
}

/// A plain `serve` (no demo) on `url` with `key_file`: its base URL and the child.
fn serve(dir: &std::path::Path, url: &str, key_file: &str) -> (std::process::Child, String) {
    let mut child = runledger()
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", url])
        .args(["--signing-key-file", key_file])
        // Only the final checkpoint at shutdown, whatever the test's pace.
        .args(["--checkpoint-interval-secs", "3600"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .expect("serve printed its URL")
        .unwrap();
    let base = line
        .strip_prefix("GraphiQL: ")
        .unwrap()
        .trim_end_matches("/graphiql")
        .to_string();
    (child, base)
}

/// SIGTERM; true when the process exited 0.
fn stop(child: std::process::Child) -> bool {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = child;
    child.wait().unwrap().success()
}

/// The key id of a verifier key `<name>+<id>+<key>`.
fn key_id(verifier_key: &str) -> String {
    verifier_key.trim().split('+').nth(1).unwrap().to_string()
}

/// Row counts an unwanted write would change.
async fn counts(db: &TestDb) -> Vec<i64> {
    let mut out = Vec::new();
    for table in [
        "tenants",
        "api_keys",
        "audit_ledger",
        "ledger_checkpoints",
        "llm_runs",
        "system_records",
    ] {
        out.extend(db.query_i64(&format!("SELECT COUNT(*) FROM {table}")).await);
    }
    out
}

/// A server holding another key than the one the database's checkpoints carry is refused at
/// start, naming both; after `keys rotate-signing` the new key starts and trusts the old
/// checkpoints, the old key is retired, and a forged rotation grants nothing.
async fn a_foreign_signing_key_is_refused_until_an_explicit_rotation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let url = db.url.as_str();
    let dir = temp_dir("runledger_identity");
    let path = |name: &str| dir.join(name).display().to_string();
    let (a, b, c) = (path("a.key"), path("b.key"), path("c.key"));
    let tenant = run_ok(&[
        "seed",
        "--database-url",
        url,
        "--tenants",
        "1",
        "--runs",
        "3",
        "--steps-per-run",
        "1",
        "--signing-key-file",
        &a,
    ]);
    let tenant = tenant.trim().to_string();
    let verifier_a = run_ok(&["keys", "public", "--signing-key-file", &a]);
    let verifier_b = run_ok(&["keys", "public", "--signing-key-file", &b]);
    let (id_a, id_b) = (key_id(&verifier_a), key_id(&verifier_b));
    assert_eq!(
        db.query_strings("SELECT DISTINCT key_id FROM ledger_checkpoints")
            .await,
        vec![id_a.clone()]
    );
    let before = counts(&db).await;

    // Another key file: refused, naming both key ids, the file and the remedies.
    let (code, err) = serve_refused(&dir, &["--database-url", url, "--signing-key-file", &b]);
    assert_eq!(code, 1, "{err}");
    for needle in [
        id_a.as_str(),
        id_b.as_str(),
        b.as_str(),
        "--signing-key-file",
        "rotate-signing",
        "--trusted-keys",
    ] {
        assert!(err.contains(needle), "`{needle}` missing from: {err}");
    }
    // So is `seed`, which signs checkpoints too, before writing anything.
    let err = run_err(&[
        "seed",
        "--database-url",
        url,
        "--tenants",
        "1",
        "--runs",
        "1",
        "--seed",
        "77",
        "--signing-key-file",
        &b,
    ]);
    assert!(err.contains(&id_a) && err.contains(&id_b), "{err}");
    // A missing key file is not created over a ledger signed by another key.
    let missing = path("missing.key");
    let (code, err) = serve_refused(
        &dir,
        &["--database-url", url, "--signing-key-file", &missing],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&id_a) && err.contains(&missing) && err.contains("does not exist"),
        "{err}"
    );
    assert!(!dir.join("missing.key").exists());
    // A rotation needs the current key.
    let err = run_err(&[
        "keys",
        "rotate-signing",
        "--database-url",
        url,
        "--signing-key-file",
        &b,
        "--new-key-file",
        &c,
    ]);
    assert!(err.contains(&id_a), "{err}");
    assert!(!dir.join("c.key").exists());
    assert_eq!(counts(&db).await, before, "nothing was written");

    // The explicit rotation, recorded in the platform ledger.
    let verifier_c = run_ok(&[
        "keys",
        "rotate-signing",
        "--database-url",
        url,
        "--signing-key-file",
        &a,
        "--new-key-file",
        &c,
    ]);
    assert_eq!(
        verifier_c,
        run_ok(&["keys", "public", "--signing-key-file", &c])
    );
    let id_c = key_id(&verifier_c);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("c.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let entries = db
        .query_strings(
            "SELECT event_type || ' ' || entity_id || ' ' || before_state FROM audit_ledger \
             WHERE tenant_id = '_platform' AND category = 'IDENTITY'",
        )
        .await;
    let before_state = json!({"verifier_key": verifier_a.trim()}).to_string();
    assert_eq!(
        entries,
        vec![format!("SIGNING_KEY_ROTATED {id_c} {before_state}")]
    );

    // The new key starts, trusts the old key's checkpoints and publishes itself.
    let key = run_ok(&[
        "keys",
        "create",
        "--database-url",
        url,
        "--tenant",
        &tenant,
        "--role",
        "auditor",
    ]);
    let (child, base) = serve(&dir, url, &c);
    let http = reqwest::Client::new();
    let body: serde_json::Value = http
        .post(format!("{base}/graphql"))
        .bearer_auth(key.trim())
        .json(&json!({"query": "{ audit { integrity { hashChainValid anomalies { kind } latestCheckpoint { keyId signatureValid } } signingKey { verifierKey } } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let audit = &body["data"]["audit"];
    assert_eq!(
        audit["integrity"],
        json!({"hashChainValid": true, "anomalies": [],
               "latestCheckpoint": {"keyId": id_a, "signatureValid": true}}),
        "{body}"
    );
    assert_eq!(audit["signingKey"]["verifierKey"], json!(verifier_c.trim()));
    let published = http
        .get(format!("{base}/.well-known/runledger/checkpoint-key"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(published, verifier_c);
    assert!(stop(child), "graceful shutdown");
    // Its final checkpoint is signed with the new key.
    assert_eq!(
        db.query_strings(&format!(
            "SELECT key_id FROM ledger_checkpoints WHERE tenant_id = '{tenant}' ORDER BY tree_size DESC LIMIT 1"
        ))
        .await,
        vec![id_c.clone()]
    );
    // The retired key may not sign again; the stranger's is still refused.
    let (code, err) = serve_refused(&dir, &["--database-url", url, "--signing-key-file", &a]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("retired") && err.contains(&id_a) && err.contains(&id_c),
        "{err}"
    );
    let (code, err) = serve_refused(&dir, &["--database-url", url, "--signing-key-file", &b]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&id_c) && err.contains(&id_b), "{err}");

    // Someone with write access to the database holds key x: they record "x handed over to c"
    // (signed by x, with c's signature line of the real statement) and a checkpoint signed by x.
    // The server holding c does not trust x for it.
    let x = runledger::ledger::note::NoteSigner::generate("runledger").unwrap();
    let vx = runledger::ledger::note::NoteVerifier::from(&x);
    let vc = runledger::ledger::note::NoteVerifier::parse(verifier_c.trim()).unwrap();
    let real = db
        .query_strings(
            "SELECT after_state FROM audit_ledger WHERE tenant_id = '_platform' \
             AND event_type = 'SIGNING_KEY_ROTATED'",
        )
        .await
        .remove(0);
    let real: serde_json::Value = serde_json::from_str(&real).unwrap();
    // The real statement: the body naming both keys, signed by the old key, then the new one.
    let statement = real["statement"].as_str().unwrap();
    // It covers each ledger's newest checkpoint at the rotation: all signed by the old key.
    let mut real_body = format!(
        "runledger signing key rotation\nold {}\nnew {}\n",
        verifier_a.trim(),
        verifier_c.trim()
    );
    for line in db
        .query_strings(&format!(
            "SELECT 'covers ' || CAST(MAX(tree_size) AS TEXT) || ' ' || tenant_id \
             FROM ledger_checkpoints WHERE key_id = '{id_a}' GROUP BY tenant_id ORDER BY tenant_id"
        ))
        .await
    {
        real_body.push_str(&line);
        real_body.push('\n');
    }
    let lines: Vec<&str> = statement
        .strip_prefix(&format!("{real_body}\n"))
        .unwrap()
        .lines()
        .collect();
    assert_eq!(lines.len(), 2, "{statement}");
    for (line, id) in lines.iter().zip([&id_a, &id_c]) {
        use base64::Engine as _;
        let sig = line.strip_prefix("\u{2014} runledger ").unwrap();
        let blob = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .unwrap();
        assert_eq!(&hex::encode(&blob[..4]), id);
    }
    let c_line = real["statement"]
        .as_str()
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    // The statement's body as README.md specifies it.
    let body = format!(
        "runledger signing key rotation\nold {}\nnew {}\n",
        vx.verifier_key(),
        vc.verifier_key()
    );
    let mut forged = x.sign(&body);
    forged.push_str(&c_line);
    forged.push('\n');
    let after = json!({"verifier_key": verifier_c.trim(), "statement": forged}).to_string();
    let before = json!({"verifier_key": vx.verifier_key()}).to_string();
    db.exec(&format!(
        "INSERT INTO audit_ledger (tenant_id, seq, id, category, event_type, entity_type, entity_id, \
         actor_type, actor_id, action_reason, decision, before_state, after_state, correlation_id, \
         occurred_at, recorded_at, prev_hash, entry_hash) \
         SELECT tenant_id, seq + 1, 'le_forged', category, event_type, entity_type, entity_id, \
         actor_type, actor_id, action_reason, decision, '{before}', '{after}', correlation_id, \
         occurred_at, recorded_at, entry_hash, entry_hash FROM audit_ledger \
         WHERE tenant_id = '_platform' AND event_type = 'SIGNING_KEY_ROTATED'"
    ))
    .await
    .unwrap();
    let head = db
        .query_i64(&format!(
            "SELECT MAX(seq) FROM audit_ledger WHERE tenant_id = '{tenant}'"
        ))
        .await[0];
    let size = head as u64 + 1;
    let note = x.sign(&runledger::ledger::note::checkpoint_body(
        &format!("runledger/{tenant}"),
        size,
        &[7; 32],
    ));
    db.exec(&format!(
        "INSERT INTO ledger_checkpoints (tenant_id, tree_size, root_hash, signed_note, key_id, recorded_at, frontier) \
         SELECT tenant_id, {size}, '{}', '{note}', '{}', recorded_at, NULL FROM ledger_checkpoints \
         WHERE tenant_id = '{tenant}' ORDER BY tree_size DESC LIMIT 1",
        hex::encode([7u8; 32]),
        x.key_id_hex()
    ))
    .await
    .unwrap();
    let (code, err) = serve_refused(&dir, &["--database-url", url, "--signing-key-file", &c]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&x.key_id_hex()) && err.contains(&id_c),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
both!(a_foreign_signing_key_is_refused_until_an_explicit_rotation);

/// `--demo` on a non-loopback address is refused with the reason, before any database is
/// opened.
#[test]
fn demo_is_refused_off_loopback() {
    let dir = temp_dir("runledger_demo_any");
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let (code, err) = serve_refused(&dir, &["--demo", "--listen", listen]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(listen) && err.contains("loopback") && err.contains("/graphiql"),
            "{err}"
        );
    }
    assert!(
        !dir.join("runledger.db").exists(),
        "no database was created"
    );
    assert!(!dir.join("runledger-demo.key").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The demo key survives restarts while it authenticates; a revoked one is replaced.
async fn the_demo_key_is_kept_across_restarts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = temp_dir("runledger_demo_key");
    let url = ["--database-url", db.url.as_str()];
    let first = Served::start(&dir, &url);
    let key = first.key.clone();
    assert!(first.stop().success());
    let second = Served::start(&dir, &url);
    assert_eq!(second.key, key, "the same demo key on the second start");
    let viewer = second.query("{ viewer { tenantId role } }").await;
    assert_eq!(
        viewer["data"]["viewer"],
        json!({"tenantId": "demo", "role": "AUDITOR"})
    );
    assert!(second.stop().success());
    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM api_keys WHERE tenant_id = 'demo'")
            .await,
        vec![1],
        "one key minted for both starts"
    );
    // Revoked: the next start mints a new key and keeps that one.
    run_ok(&[
        "keys",
        "revoke",
        "--database-url",
        &db.url,
        "--tenant",
        "demo",
        "--key-id",
        &key[3..15],
    ]);
    let third = Served::start(&dir, &url);
    assert_ne!(third.key, key);
    let kept = std::fs::read_to_string(dir.join("runledger-demo.key")).unwrap();
    assert_eq!(kept.trim(), third.key);
    assert!(third.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}
both!(the_demo_key_is_kept_across_restarts);

/// `--demo` on a database that serves other tenants is refused, naming them, and adds nothing.
async fn demo_is_refused_on_a_database_with_tenants(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = temp_dir("runledger_demo_tenants");
    run_ok(&[
        "tenants",
        "create",
        "--database-url",
        &db.url,
        "--id",
        "acme",
    ]);
    let before = counts(&db).await;
    let (code, err) = serve_refused(
        &dir,
        &[
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("acme") && err.contains("--demo"), "{err}");
    assert_eq!(counts(&db).await, before, "no demo tenant, key or data");
    let _ = std::fs::remove_dir_all(&dir);
}
both!(demo_is_refused_on_a_database_with_tenants);

/// Every command that takes `--tenant` refuses one that does not exist, names it, and writes
/// nothing.
async fn unknown_tenants_are_refused_by_every_command(backend: Backend) {
    let db = TestDb::new(backend).await;
    let url = db.url.as_str();
    let dir = temp_dir("runledger_unknown_tenant");
    run_ok(&["tenants", "create", "--database-url", url, "--id", "acme"]);
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
    let key_id = &key.trim()[3..15];
    let file = dir.join("records.json");
    std::fs::write(
        &file,
        json!([{"recordId": "r-1", "component": "gateway", "eventType": "CERT_ROTATED",
                "severity": "INFO", "summary": "rotated", "occurredAt": "2026-05-01T10:00:00Z"}])
        .to_string(),
    )
    .unwrap();
    let records = file.display().to_string();
    let before = counts(&db).await;
    let commands: [&[&str]; 4] = [
        &["keys", "create", "--role", "viewer"],
        &["keys", "rotate", "--key-id", key_id],
        &["keys", "revoke", "--key-id", key_id],
        &["ingest", "system-records", "--file", &records],
    ];
    for command in commands {
        let args = [command, &["--database-url", url, "--tenant", "ghost"]].concat();
        let err = run_err(&args);
        assert!(
            err.contains("tenant `ghost` does not exist")
                && err.contains("runledger tenants create --id ghost"),
            "{args:?}: {err}"
        );
        assert_eq!(counts(&db).await, before, "{args:?} wrote nothing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
both!(unknown_tenants_are_refused_by_every_command);

/// A lost key's verifier key, listed in `--trusted-keys`, lets a new key file be created and
/// the server start over the lost key's checkpoints.
async fn a_lost_key_listed_in_trusted_keys_lets_a_new_key_start(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = temp_dir("runledger_lost_key");
    let lost = dir.join("lost.key").display().to_string();
    run_ok(&[
        "seed",
        "--database-url",
        &db.url,
        "--tenants",
        "1",
        "--runs",
        "2",
        "--steps-per-run",
        "1",
        "--signing-key-file",
        &lost,
    ]);
    let verifier = run_ok(&["keys", "public", "--signing-key-file", &lost]);
    std::fs::remove_file(&lost).unwrap();
    let new = dir.join("new.key").display().to_string();
    let (code, err) = serve_refused(
        &dir,
        &["--database-url", &db.url, "--signing-key-file", &new],
    );
    assert_eq!(code, 1, "{err}");
    assert!(!dir.join("new.key").exists());
    let mut child = runledger()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
        ])
        .args([
            "--signing-key-file",
            &new,
            "--trusted-keys",
            verifier.trim(),
        ])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap()).lines().next();
    assert!(
        matches!(&line, Some(Ok(l)) if l.starts_with("GraphiQL: ")),
        "{line:?}"
    );
    assert!(dir.join("new.key").exists(), "the new key was created");
    assert!(stop(child));
    let _ = std::fs::remove_dir_all(&dir);
}
both!(a_lost_key_listed_in_trusted_keys_lets_a_new_key_start);

/// A rotation recorded while a server runs retires the server's key: it signs no checkpoint
/// with it afterwards (not even the one at shutdown, which it refuses, exiting non-zero), and a
/// server holding the new key signs from there.
async fn a_key_retired_while_its_server_runs_signs_no_more(backend: Backend) {
    let db = TestDb::new(backend).await;
    let url = db.url.as_str();
    let dir = temp_dir("runledger_retired");
    let path = |name: &str| dir.join(name).display().to_string();
    let (a, c) = (path("a.key"), path("c.key"));
    let id_a = key_id(&run_ok(&["keys", "public", "--signing-key-file", &a]));
    run_ok(&["tenants", "create", "--database-url", url, "--id", "acme"]);
    let (child, _) = serve(&dir, url, &a);
    let verifier_c = run_ok(&[
        "keys",
        "rotate-signing",
        "--database-url",
        url,
        "--signing-key-file",
        &a,
        "--new-key-file",
        &c,
    ]);
    // The running server holds the retired key: its final checkpoint is refused.
    assert!(
        !stop(child),
        "a server with a retired key must not shut down cleanly"
    );
    assert_eq!(
        db.query_i64(&format!(
            "SELECT COUNT(*) FROM ledger_checkpoints WHERE key_id = '{id_a}'"
        ))
        .await,
        vec![0],
        "no checkpoint signed with the retired key"
    );
    let (child, _) = serve(&dir, url, &c);
    assert!(stop(child), "graceful shutdown with the new key");
    assert_eq!(
        db.query_strings("SELECT DISTINCT key_id FROM ledger_checkpoints")
            .await,
        vec![key_id(&verifier_c)]
    );
}
both!(a_key_retired_while_its_server_runs_signs_no_more);

/// A retired key stays trusted only for what its ledgers' checkpoints covered when it was
/// retired: a checkpoint its holder signs later (with write access to the database) is
/// reported, while the checkpoints it signed before the rotation still verify.
async fn a_retired_key_is_trusted_only_up_to_what_it_covered(backend: Backend) {
    let db = TestDb::new(backend).await;
    let url = db.url.as_str();
    let dir = temp_dir("runledger_bounded");
    let path = |name: &str| dir.join(name).display().to_string();
    let (a, c) = (path("a.key"), path("c.key"));
    let seeded = run_ok(&[
        "seed",
        "--database-url",
        url,
        "--tenants",
        "1",
        "--runs",
        "2",
        "--steps-per-run",
        "1",
        "--signing-key-file",
        &a,
    ]);
    let tenant = seeded.trim().to_string();
    let covered = db
        .query_i64(&format!(
            "SELECT MAX(tree_size) FROM ledger_checkpoints WHERE tenant_id = '{tenant}'"
        ))
        .await[0];
    let verifier_c = run_ok(&[
        "keys",
        "rotate-signing",
        "--database-url",
        url,
        "--signing-key-file",
        &a,
        "--new-key-file",
        &c,
    ]);
    // The new key's server appends (its access records) and signs a larger checkpoint.
    let (child, base) = serve(&dir, url, &c);
    let key = run_ok(&[
        "keys",
        "create",
        "--database-url",
        url,
        "--tenant",
        &tenant,
        "--role",
        "viewer",
    ]);
    let ok = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(key.trim())
        .json(&json!({"query": "{ llmRuns(first: 1) { totalCount } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(stop(child));
    let verify = |what: &str| {
        let out = runledger()
            .args(["verify", "--database-url", url, "--tenant", &tenant])
            .args(["--public-key", verifier_c.trim()])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{what}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), report["ledgers"][0].clone())
    };
    let (code, report) = verify("after the rotation");
    assert_eq!(code, Some(0), "{report}");
    // Someone holding the retired key replaces the newest checkpoint by one it signs.
    let (size, root): (i64, String) = {
        let sizes = db
            .query_i64(&format!(
                "SELECT MAX(tree_size) FROM ledger_checkpoints WHERE tenant_id = '{tenant}'"
            ))
            .await;
        let roots = db
            .query_strings(&format!(
                "SELECT root_hash FROM ledger_checkpoints WHERE tenant_id = '{tenant}' \
                 AND tree_size = {}",
                sizes[0]
            ))
            .await;
        (sizes[0], roots[0].clone())
    };
    assert!(size > covered, "{size} > {covered}");
    let old = runledger::ledger::note::load(std::path::Path::new(&a), "runledger")
        .unwrap()
        .unwrap();
    let mut root_bytes = [0u8; 32];
    root_bytes.copy_from_slice(&hex::decode(&root).unwrap());
    let forged = old.sign(&runledger::ledger::note::checkpoint_body(
        &format!("runledger/{tenant}"),
        size as u64,
        &root_bytes,
    ));
    match backend {
        Backend::Sqlite => {
            db.exec("DROP TRIGGER ledger_checkpoints_refuse_update")
                .await
                .unwrap();
        }
        Backend::Postgres => {
            db.exec("ALTER TABLE ledger_checkpoints DISABLE TRIGGER USER")
                .await
                .unwrap();
        }
    }
    db.exec(&format!(
        "UPDATE ledger_checkpoints SET signed_note = '{}', key_id = '{}' \
         WHERE tenant_id = '{tenant}' AND tree_size = {size}",
        forged.replace('\'', "''"),
        old.key_id_hex()
    ))
    .await
    .unwrap();
    let (code, report) = verify("after the forgery");
    assert_eq!(code, Some(1), "{report}");
    let anomalies = report["anomalies"].as_array().unwrap();
    assert!(
        anomalies
            .iter()
            .any(|x| x["kind"] == "UNKNOWN_KEY_SIGNATURE"
                && x["seq"] == size
                && x["detail"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("only up to size {covered}"))),
        "{report}"
    );
    // Only the forged one: the checkpoints the old key signed before its rotation still hold.
    assert_eq!(anomalies.len(), 1, "{report}");
}
both!(a_retired_key_is_trusted_only_up_to_what_it_covered);
