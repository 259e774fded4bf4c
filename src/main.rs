//! The `runledger` command: parses the command line, sets up logging, and runs one command.
//! Command output meant for scripts goes to stdout; logs go to stderr.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use runledger::config::{
    Cli, Command, DatabaseArgs, ExportCommandArgs, IngestCommand, KeysCommand, LedgerArgs,
    LogFormat, RollupsCommand, ServeArgs, TenantsCommand, VerifyArgs, VerifyBundleArgs,
};
use runledger::db::{Db, redact_url};
use runledger::domain::Role;
use runledger::error::{AppError, AppResult, Context};
use runledger::ledger::checkpoint::{self, LedgerKeys};
use runledger::ledger::note::{self, NoteVerifier};
use runledger::ledger::signing;
use runledger::ledger::verify::{self, Verdict, VerificationMode, VerifyOptions};
use runledger::startup::Server;
use runledger::{auth, graphql, ingest, seed};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("RUNLEDGER_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn open(args: &DatabaseArgs) -> AppResult<Db> {
    let db = Db::connect(&args.database_url, args.max_connections()).await?;
    db.migrate().await?;
    Ok(db)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Serve(a) => a.log_format,
        _ => LogFormat::Text,
    };
    init_logging(format);
    if let Command::VerifyBundle(args) = &cli.command {
        return match verify_bundle(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {}", e.describe());
                ExitCode::from(EXIT_VERIFY_ERROR)
            }
        };
    }
    if let Command::Verify(args) = cli.command {
        return match verify_ledgers(args).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {}", e.describe());
                ExitCode::from(EXIT_VERIFY_ERROR)
            }
        };
    }
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.describe());
            ExitCode::FAILURE
        }
    }
}

/// `verify` exit codes (documented in the README and `runledger verify --help`).
const EXIT_VERIFY_ANOMALY: u8 = 1;
const EXIT_VERIFY_ERROR: u8 = 2;
const EXIT_VERIFY_UNANCHORED_TAIL: u8 = 3;

/// `runledger export`: requests an export as the operator, builds it here, copies it to --out.
async fn export_as_operator(args: &ExportCommandArgs) -> AppResult<()> {
    use runledger::domain::{ExportFormat, ExportStatus};
    use runledger::export::{self, ExportSpec};
    use sea_orm::EntityTrait;
    let spec = ExportSpec::from_scope_text(&args.scope)?;
    let format = ExportFormat::parse_field(&args.format, "--format")?;
    let db = open(&args.database).await?;
    entity::tenants::Entity::find_by_id(args.tenant.clone())
        .one(&db.conn)
        .await
        .context("look up the tenant")?
        .ok_or_else(|| AppError::bad_input(format!("unknown tenant `{}`", args.tenant)))?;
    let keys = signing_identity(&db, &args.ledger).await?;
    let settings = args.exports.settings();
    let row = export::request(
        &db,
        settings.max_pending_per_tenant,
        &args.tenant,
        runledger::ledger::vocabulary::CLI_ACTOR,
        &spec,
        format,
    )
    .await?;
    let done = export::worker::build_now(&db, &keys, &settings, &row).await?;
    let job = export::job_of(&db, &args.tenant, &row.id).await?;
    if done.status != ExportStatus::Completed.as_str() {
        let why = job
            .and_then(|j| j.error)
            .unwrap_or_else(|| done.status.clone());
        return Err(AppError::Conflict(format!(
            "export {} failed: {why}",
            row.id
        )));
    }
    let job = job.ok_or_else(|| AppError::internal("read an export job", "it vanished"))?;
    let (path, size) = export::finished_file(&settings, &done, &job)?;
    std::fs::copy(&path, &args.out)
        .with_context(|| format!("copy {} to {}", path.display(), args.out.display()))?;
    let out = serde_json::json!({
        "export_id": done.id,
        "checksum": done.checksum,
        "records": job.records_written,
        "size_bytes": size,
        "file": args.out.display().to_string(),
    });
    println!("{out}");
    Ok(())
}

/// A verifier key given as text or as a file holding it.
fn verifier_text(text: &str) -> AppResult<NoteVerifier> {
    let path = Path::new(text);
    let text = if path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?
    } else {
        text.to_string()
    };
    NoteVerifier::parse(text.trim())
}

/// `runledger verify-bundle`: the bundle's report on stdout; the exit code says the outcome.
fn verify_bundle(args: &VerifyBundleArgs) -> AppResult<ExitCode> {
    use runledger::export::verify::{self as bundle, Options};
    let public_key = args.public_key.as_deref().map(verifier_text).transpose()?;
    let read =
        |p: &Path| std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()));
    let trusted_checkpoint = args.trusted_checkpoint.as_deref().map(read).transpose()?;
    let consistency_proof = match args.consistency_proof.as_deref().map(read).transpose()? {
        None => None,
        Some(text) => Some(parse_proof(&text)?),
    };
    let file =
        std::fs::File::open(&args.file).with_context(|| format!("open {}", args.file.display()))?;
    let opts = Options {
        public_key,
        trusted_checkpoint,
        consistency_proof,
    };
    let report = bundle::verify(std::io::BufReader::with_capacity(1 << 20, file), &opts)
        .with_context(|| format!("read {}", args.file.display()))?;
    let text = serde_json::to_string_pretty(&report).context("render the report")?;
    println!("{text}");
    Ok(ExitCode::from(report.exit_code()))
}

/// A consistency proof: a JSON array of hex hashes, or an object holding one under `hashes` or
/// `proof` (at any depth, as `audit { consistencyProof { hashes } }`'s answer has it).
fn parse_proof(text: &str) -> AppResult<Vec<[u8; 32]>> {
    fn find(v: &serde_json::Value) -> Option<&Vec<serde_json::Value>> {
        match v {
            serde_json::Value::Array(a) => Some(a),
            serde_json::Value::Object(m) => m
                .get("hashes")
                .or_else(|| m.get("proof"))
                .and_then(find)
                .or_else(|| m.values().find_map(find)),
            _ => None,
        }
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| AppError::bad_input(format!("the consistency proof is not JSON: {e}")))?;
    find(&value)
        .ok_or_else(|| AppError::bad_input("the consistency proof holds no array of hashes"))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(runledger::ledger::merkle::parse_hash)
                .ok_or_else(|| AppError::bad_input("the consistency proof holds a malformed hash"))
        })
        .collect()
}

/// The verifier keys of `--trusted-keys`.
/// The checkpoint signing key, checked against the ledgers it will sign (see
/// `ledger::signing`): refused when a ledger's newest checkpoint is signed by a key it neither
/// holds nor trusts; created (owner-only) only when that orphans no checkpoint.
async fn signing_identity(db: &Db, args: &LedgerArgs) -> AppResult<LedgerKeys> {
    signing::open_identity(
        db,
        &args.signing_key_file,
        &args.log_name,
        args.trusted_verifiers()?,
    )
    .await
}

/// The verifier key an auditor trusts: given as text or a file, else the key file's public half.
fn verifier_for(args: &VerifyArgs) -> AppResult<NoteVerifier> {
    match &args.public_key {
        Some(text) => {
            let path = std::path::Path::new(text);
            let text = if path.is_file() {
                std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?
            } else {
                text.clone()
            };
            NoteVerifier::parse(text.trim())
        }
        None if args.signing_key_file.is_file() => {
            let (signer, _) = note::load_or_create(&args.signing_key_file, &args.log_name)?;
            Ok(NoteVerifier::from(&signer))
        }
        None => Err(AppError::bad_input(format!(
            "no verifier key: pass --public-key (see `runledger keys public`) or a \
             --signing-key-file that exists ({} does not)",
            args.signing_key_file.display()
        ))),
    }
}

/// `runledger verify`: one JSON report per ledger on stdout; the exit code says the worst.
async fn verify_ledgers(args: VerifyArgs) -> AppResult<ExitCode> {
    let verifier = verifier_for(&args)?;
    // An auditor's connection may be read-only: connect, never migrate.
    let db = Db::connect(&args.database.database_url, args.database.max_connections()).await?;
    // Keys the trusted key took over from, proven by rotation statements it signed.
    let rotations = signing::rotations(&db.conn).await?;
    let retired = signing::predecessors(&rotations, &verifier);
    // An auditor's kept checkpoint may be one a retired key signed.
    let mut verifiers = vec![verifier.clone()];
    verifiers.extend(retired.iter().map(|(k, _)| k.clone()));
    let trusted = match &args.trusted_checkpoint {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?,
        ),
        None => None,
    };
    let tenants = match (&args.tenant, &trusted) {
        (Some(t), _) => vec![t.clone()],
        (None, Some(note_text)) => {
            // The trusted checkpoint names its tenant in its origin.
            let cp = note::open_checkpoint(note_text, &verifiers).map_err(|e| {
                AppError::bad_input(format!("the trusted checkpoint: {}", e.describe()))
            })?;
            let prefix = format!("{}/", args.log_name);
            vec![
                cp.origin
                    .strip_prefix(&prefix)
                    .unwrap_or(&cp.origin)
                    .to_string(),
            ]
        }
        (None, None) => checkpoint::ledger_names(&db).await?,
    };
    // A name nothing is known of is a typo, not an empty ledger.
    for tenant in &tenants {
        if !runledger::ledger::ledgers::ledger_known(&db.conn, tenant).await? {
            return Err(AppError::bad_input(format!(
                "unknown tenant `{tenant}`: it has no tenant row, no ledger entries and no \
                 checkpoints"
            )));
        }
    }
    let mut reports = Vec::new();
    for tenant in &tenants {
        let opts = VerifyOptions {
            mode: if args.incremental {
                VerificationMode::Incremental
            } else {
                VerificationMode::Full
            },
            verifiers: vec![verifier.clone()],
            retired: signing::retired_for(&retired, tenant),
            origin: verify::origin_of(&args.log_name, tenant),
            trusted_checkpoint: trusted.clone(),
            check_records: !args.skip_records,
            parallel: verify::all_cores(),
        };
        let report = verify::verify(&db.conn, tenant, &opts).await?;
        if args.record {
            let entry = verify::verification_entry(&report, Some("runledger verify".into()));
            let tx = db.begin_write().await?;
            runledger::ledger::append(&tx.txn, tenant, vec![entry]).await?;
            tx.commit().await?;
        }
        reports.push(report);
    }
    let worst = if reports.iter().any(|r| r.status == Verdict::Broken) {
        EXIT_VERIFY_ANOMALY
    } else if reports
        .iter()
        .any(|r| r.status == Verdict::VerifiedUnanchoredTail)
    {
        EXIT_VERIFY_UNANCHORED_TAIL
    } else {
        0
    };
    let out = serde_json::to_string_pretty(&serde_json::json!({ "ledgers": reports }))
        .context("write the verification report")?;
    println!("{out}");
    Ok(ExitCode::from(worst))
}

async fn run(command: Command) -> AppResult<()> {
    match command {
        Command::Verify(_) | Command::VerifyBundle(_) => Ok(()),
        Command::Export(args) => export_as_operator(&args).await,
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => {
            open(&args).await?;
            println!("migrated {}", redact_url(&args.database_url));
            Ok(())
        }
        Command::Seed(args) => {
            let db = open(&args.database).await?;
            let opts = seed::SeedOptions {
                tenants: args.tenants,
                runs: args.runs,
                steps_per_run: args.steps_per_run,
                telemetry_percent: args.telemetry_percent,
                seed: args.seed,
            };
            let keys = signing_identity(&db, &args.ledger).await?;
            let settings = args.exports.settings();
            let exports = seed::SeedExports {
                keys: &keys,
                settings: &settings,
            };
            for tenant in seed::seed(&db, &opts, exports).await? {
                println!("{tenant}");
            }
            // End with a checkpoint, so a quiet seeded ledger is fully covered.
            checkpoint::checkpoint_all(&db, &keys, None).await?;
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Create {
                    database,
                    tenant,
                    role,
                    label,
                },
        } => {
            let db = open(&database).await?;
            auth::require_tenant(&db, &tenant).await?;
            let (key, _) = auth::create_key(&db, &tenant, role.into(), label, None).await?;
            println!("{key}");
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Rotate {
                    database,
                    tenant,
                    key_id,
                },
        } => {
            let db = open(&database).await?;
            auth::require_tenant(&db, &tenant).await?;
            let (key, _) = auth::rotate_key(&db, &tenant, &key_id, None).await?;
            println!("{key}");
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Revoke {
                    database,
                    tenant,
                    key_id,
                },
        } => {
            let db = open(&database).await?;
            auth::require_tenant(&db, &tenant).await?;
            auth::revoke_key(&db, &tenant, &key_id, None).await?;
            println!("revoked {key_id}");
            Ok(())
        }
        Command::Tenants {
            command:
                TenantsCommand::Create {
                    database,
                    id,
                    name,
                    frameworks,
                },
        } => {
            let db = open(&database).await?;
            let frameworks: Vec<&str> = frameworks.iter().map(String::as_str).collect();
            let name = name.unwrap_or_else(|| id.clone());
            if !auth::ensure_tenant(&db, &id, &name, &frameworks).await? {
                return Err(AppError::Conflict(format!("tenant `{id}` already exists")));
            }
            println!("{id}");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Public { ledger },
        } => {
            let (signer, created) =
                note::load_or_create(&ledger.signing_key_file, &ledger.log_name)?;
            if created {
                tracing::info!(path = %ledger.signing_key_file.display(),
                    "created the checkpoint signing key (owner-only permissions)");
            }
            println!("{}", signer.verifier_key());
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::RotateSigning {
                    database,
                    ledger,
                    new_key_file,
                },
        } => {
            let db = open(&database).await?;
            let new = signing::rotate(
                &db,
                &ledger.signing_key_file,
                &new_key_file,
                &ledger.log_name,
                ledger.trusted_verifiers()?,
            )
            .await?;
            tracing::info!(new_key_file = %new_key_file.display(),
                "signing key rotated; restart servers with --signing-key-file set to the new key");
            println!("{}", new.verifier_key());
            Ok(())
        }
        Command::Ingest {
            command:
                IngestCommand::SystemRecords {
                    database,
                    file,
                    global,
                    tenant,
                },
        } => {
            let db = open(&database).await?;
            if let Some(tenant) = &tenant {
                // Records of a tenant that does not exist would go to a ledger nobody verifies.
                auth::require_tenant(&db, tenant).await?;
            }
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("read {}", file.display()))?;
            let stored =
                ingest::operator_system_records(&db, &text, global, tenant.as_deref()).await?;
            for r in &stored.stored {
                println!("stored {} {}", r.key, r.checksum);
            }
            for r in &stored.already_present {
                println!("present {} {}", r.key, r.checksum);
            }
            Ok(())
        }
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Rollups {
            command: RollupsCommand::Rebuild { database, tenant },
        } => {
            let db = open(&database).await?;
            for tenant in rollup_tenants(&db, tenant).await? {
                let rows = runledger::rollup::rebuild(&db, &tenant).await?;
                println!("{tenant} {rows}");
            }
            Ok(())
        }
        Command::Rollups {
            command: RollupsCommand::Check { database, tenant },
        } => {
            let db = open(&database).await?;
            let mut differences = 0;
            for tenant in rollup_tenants(&db, tenant).await? {
                for d in runledger::rollup::check(&db, &tenant).await? {
                    differences += 1;
                    println!(
                        "{tenant} {} {}/{}/{}: stored {:?}, from the evidence {:?}",
                        d.key.bucket_start,
                        d.key.provider,
                        d.key.model,
                        d.key.execution_status,
                        d.stored,
                        d.from_evidence
                    );
                }
            }
            if differences > 0 {
                return Err(AppError::Conflict(format!(
                    "{differences} rollup rows differ from the evidence; \
                     `runledger rollups rebuild` recomputes them"
                )));
            }
            println!("rollups match the evidence");
            Ok(())
        }
    }
}

/// The tenant asked for (which must exist), or every tenant.
async fn rollup_tenants(db: &Db, tenant: Option<String>) -> AppResult<Vec<String>> {
    match tenant {
        Some(t) => {
            auth::require_tenant(db, &t).await?;
            Ok(vec![t])
        }
        None => runledger::rollup::tenants(db).await,
    }
}

/// Tenant that `serve --demo` fills.
const DEMO_TENANT: &str = "demo";

/// Whether an address is a loopback address (127.0.0.0/8, ::1, or ::ffff:127.x.y.z).
fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Checks what `--demo` needs before anything is opened: a loopback listen address, since the
/// GraphiQL page hands its auditor key to anyone who can reach it.
fn check_demo_address(listen: &SocketAddr) -> AppResult<()> {
    if is_loopback(listen) {
        return Ok(());
    }
    Err(AppError::bad_input(format!(
        "--demo is refused on {listen}: it puts a working auditor key into the unauthenticated \
         /graphiql page, so it listens only on a loopback address (127.0.0.0/8, ::1, \
         localhost); use --listen 127.0.0.1:PORT, or serve without --demo"
    )))
}

/// Prepares the demo tenant and returns its auditor key: seeds it on an empty database,
/// refuses a database that serves other tenants, and reuses the key kept in `key_file` while
/// it still authenticates as the demo tenant's auditor (else mints one and rewrites the file).
async fn demo_key(db: &Db, exports: seed::SeedExports<'_>, key_file: &Path) -> AppResult<String> {
    let others = auth::other_tenants(db, DEMO_TENANT).await?;
    if !others.is_empty() {
        // Demo data includes global system records, and a demo key sees every global record
        // the real tenants see: never mix a demo into a database that serves tenants.
        return Err(AppError::Conflict(format!(
            "--demo is refused: the database already serves other tenants ({}), whose global \
             system records its demo key would see; run the demo on its own database (e.g. \
             --database-url runledger-demo.db)",
            name_some(&others)
        )));
    }
    if seed::database_state(db, DEMO_TENANT).await? == seed::DatabaseState::Empty {
        tracing::info!("empty database: seeding the demo tenant");
        let opts = seed::SeedOptions::default();
        seed::seed_tenant(db, DEMO_TENANT, "Demo Agents Inc.", &opts, exports).await?;
        checkpoint::checkpoint_all(db, exports.keys, None).await?;
    }
    if let Some(key) = read_demo_key(key_file)? {
        if let Ok(caller) = auth::authenticate(db, &key).await
            && caller.tenant_id == DEMO_TENANT
            && caller.role == Role::Auditor
        {
            return Ok(key);
        }
        tracing::info!(path = %key_file.display(),
            "the kept demo key does not authenticate as the demo auditor here: minting a new one");
    }
    let (key, _) = auth::create_key(
        db,
        DEMO_TENANT,
        Role::Auditor,
        Some("serve --demo".into()),
        None,
    )
    .await?;
    write_demo_key(key_file, &key)?;
    Ok(key)
}

/// The first few names of a list, and how many more there are.
fn name_some(names: &[String]) -> String {
    const SHOWN: usize = 5;
    match names.len() {
        n if n <= SHOWN => names.join(", "),
        n => format!("{} and {} more", names[..SHOWN].join(", "), n - SHOWN),
    }
}

/// The demo key kept in `path`, if any; a file others may read is refused like the signing key.
fn read_demo_key(path: &Path) -> AppResult<Option<String>> {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AppError::internal(format!("read the demo key {shown}"), e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("read the permissions of the demo key {shown}"))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(AppError::bad_input(format!(
                "the demo key file {shown} has permissions {mode:04o}, which let group or other \
                 users read it; restrict them with `chmod 600 {shown}` or remove the file"
            )));
        }
    }
    Ok(Some(text.trim().to_string()))
}

/// Writes the demo key owner-only (0600), replacing the file atomically.
fn write_demo_key(path: &Path, key: &str) -> AppResult<()> {
    use std::io::Write as _;
    let shown = path.display();
    let tmp = path.with_extension(format!("tmp-{}", runledger::ids::random_hex(4)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(format!("{key}\n").as_bytes())?;
        f.sync_all()
    });
    let result = written.and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("write the demo key {shown}"))
}

async fn serve(args: ServeArgs) -> AppResult<()> {
    if args.demo {
        check_demo_address(&args.listen)?;
    }
    let config = args.server_config()?;
    let export_settings = config.exports.clone();
    let db = Db::connect(&args.database.database_url, args.database.max_connections()).await?;
    // Signals are listened for from here on (see `shutdown_signal`).
    let shutdown = shutdown_signal();
    let mut server = Server::build(db, config).await?;
    let demo_key = match args.demo {
        true => {
            let exports = seed::SeedExports {
                keys: server.keys(),
                settings: &export_settings,
            };
            Some(demo_key(server.db(), exports, &args.demo_key_file).await?)
        }
        false => None,
    };
    server.set_graphiql_bearer(demo_key.clone());
    let addr = server.address();
    tracing::info!(%addr, database = %redact_url(&args.database.database_url), "runledger listening");
    // Written, not printed: whoever started the server may close its stdout after reading the
    // first line, and a failed write must not take the server down (println! would panic).
    let mut banner =
        format!("GraphiQL: http://{addr}/graphiql\nDashboard: http://{addr}/dashboard\n");
    if let Some(key) = &demo_key {
        banner.push_str(&format!(
            "Demo key (role auditor, tenant {DEMO_TENANT}): {key}\n"
        ));
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    server.run_until_stopped(shutdown).await
}

/// Resolves on Ctrl-C or SIGTERM. The SIGTERM handler is installed when this is called, not
/// when the future is first polled: a supervisor (or a test) may send SIGTERM as soon as the
/// listening address is printed, which must shut down gracefully rather than kill the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let ctrl_c = async {
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            match terminate {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate => {},
        }
        tracing::info!("shutdown signal received; finishing in-flight requests");
    }
}
