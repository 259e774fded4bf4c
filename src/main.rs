//! The `runledger` command: parses the command line, sets up logging, and runs one command.
//! Command output meant for scripts goes to stdout; logs go to stderr.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use runledger::app::{self, AppState, HttpSettings};
use runledger::config::{
    Cli, Command, DatabaseArgs, IngestCommand, KeysCommand, LedgerArgs, LogFormat, ServeArgs,
    TenantsCommand, VerifyArgs,
};
use runledger::db::{Db, redact_url};
use runledger::domain::Role;
use runledger::error::{AppError, AppResult, Context};
use runledger::graphql::Limits;
use runledger::ledger::checkpoint::{self, CheckpointPolicy, LedgerKeys};
use runledger::ledger::note::{self, NoteVerifier};
use runledger::ledger::verify::{self, Verdict, VerificationMode, VerifyOptions};
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

/// Loads (or creates, owner-only) the checkpoint signing key.
fn ledger_keys(args: &LedgerArgs) -> AppResult<LedgerKeys> {
    let (signer, created) = note::load_or_create(&args.signing_key_file, &args.log_name)?;
    if created {
        tracing::info!(path = %args.signing_key_file.display(), verifier_key = %signer.verifier_key(),
            "created the checkpoint signing key (owner-only permissions)");
    }
    let mut keys = LedgerKeys::new(signer, &args.log_name);
    for k in &args.trusted_keys {
        keys.extra_verifiers.push(NoteVerifier::parse(k)?);
    }
    Ok(keys)
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
            let cp =
                note::open_checkpoint(note_text, std::slice::from_ref(&verifier)).map_err(|e| {
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
        Command::Verify(_) => Ok(()),
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
            let keys = ledger_keys(&args.ledger)?;
            for tenant in seed::seed(&db, &opts).await? {
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
            auth::ensure_tenant(&db, &tenant, &tenant, &[]).await?;
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
            let keys = ledger_keys(&ledger)?;
            println!("{}", keys.signer.verifier_key());
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
    }
}

/// Tenant that `serve --demo` fills.
const DEMO_TENANT: &str = "demo";

async fn serve(args: ServeArgs) -> AppResult<()> {
    let db = open(&args.database).await?;
    db.watch_key_changes().await;
    let keys = ledger_keys(&args.ledger)?;
    let mut demo_key = None;
    if args.demo {
        match seed::database_state(&db, DEMO_TENANT).await? {
            seed::DatabaseState::Empty => {
                tracing::info!("empty database: seeding the demo tenant");
                let opts = seed::SeedOptions::default();
                seed::seed_tenant(&db, DEMO_TENANT, "Demo Agents Inc.", &opts).await?;
                checkpoint::checkpoint_all(&db, &keys, None).await?;
            }
            seed::DatabaseState::HasTenant => {}
            seed::DatabaseState::OtherTenantsOnly => {
                // Demo data includes global system records, which every tenant would see:
                // never add it to a database that already serves tenants.
                tracing::warn!(
                    "the database already has tenants: creating an empty demo tenant, no demo data"
                );
                auth::ensure_tenant(&db, DEMO_TENANT, "Demo Agents Inc.", &[]).await?;
            }
        }
        let (key, _) = auth::create_key(
            &db,
            DEMO_TENANT,
            Role::Auditor,
            Some("serve --demo".into()),
            None,
        )
        .await?;
        demo_key = Some(key);
    }
    let settings = HttpSettings {
        max_batch: args.max_batch,
        max_body_bytes: args.max_body_bytes,
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        limits: Limits {
            max_depth: args.max_depth,
            max_complexity: args.max_complexity,
            introspection: !args.disable_introspection,
        },
        graphiql_bearer: demo_key.clone(),
        record_requests: args.record_requests,
        max_aliases: args.max_aliases,
        rate_limit: (args.rate_limit_per_second > 0.0)
            .then_some((args.rate_limit_per_second, args.rate_limit_burst)),
        cors_allowed_origins: args.cors_allowed_origins.clone(),
        metrics: args.metrics,
    };
    let router = app::router(AppState::new(db.clone(), keys.clone(), settings));
    let policy = CheckpointPolicy {
        every_entries: args.checkpoints.checkpoint_every_entries,
        interval: Duration::from_secs(args.checkpoints.checkpoint_interval_secs),
    };
    let (stop_checkpoints, stopped) = tokio::sync::oneshot::channel::<()>();
    let checkpointer = tokio::spawn(checkpoint::run_periodically(
        db.clone(),
        keys.clone(),
        policy,
        async move {
            let _ = stopped.await;
        },
    ));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("read the listening address")?;
    tracing::info!(%addr, database = %redact_url(&args.database.database_url), "runledger listening");
    println!("GraphiQL: http://{addr}/graphiql");
    if let Some(key) = &demo_key {
        println!("Demo key (role auditor, tenant {DEMO_TENANT}): {key}");
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serve HTTP")?;
    // A graceful shutdown ends with a checkpoint, so a quiet ledger is fully covered.
    let _ = stop_checkpoints.send(());
    let _ = checkpointer.await;
    let signed = checkpoint::checkpoint_all(&db, &keys, None).await?;
    tracing::info!(checkpoints = signed, "shut down");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
