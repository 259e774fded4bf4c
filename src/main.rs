//! The `runledger` command: parses the command line, sets up logging, and runs one command.
//! Command output meant for scripts goes to stdout; logs go to stderr.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use runledger::app::{self, AppState, HttpSettings};
use runledger::config::{
    Cli, Command, DatabaseArgs, IngestCommand, KeysCommand, LogFormat, ServeArgs,
};
use runledger::db::{Db, redact_url};
use runledger::domain::Role;
use runledger::error::{AppResult, Context};
use runledger::graphql::Limits;
use runledger::{auth, graphql, ingest, seed};
use tracing_subscriber::EnvFilter;

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
    let db = Db::connect(&args.database_url, args.db_max_connections).await?;
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
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.describe());
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> AppResult<()> {
    match command {
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
                seed: args.seed,
            };
            for tenant in seed::seed(&db, &opts).await? {
                println!("{tenant}");
            }
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
    let mut demo_key = None;
    if args.demo {
        match seed::database_state(&db, DEMO_TENANT).await? {
            seed::DatabaseState::Empty => {
                tracing::info!("empty database: seeding the demo tenant");
                let opts = seed::SeedOptions::default();
                seed::seed_tenant(&db, DEMO_TENANT, "Demo Agents Inc.", &opts).await?;
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
    };
    let router = app::router(AppState::new(db, settings));
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
    tracing::info!("shut down");
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
