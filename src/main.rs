//! The `vouch` command line.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use vouch::app::{App, Bootstrap, Policy};
use vouch::config::Settings;
use vouch::startup::Application;
use vouch::store::{self, migrate};

/// vouch: event-sourced authentication service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate, bootstrap on an empty log, and serve the HTTP API.
    Serve(Settings),
    /// Create the database if missing and apply migrations, then exit.
    Migrate(Settings),
    /// The reference audit subscriber: RabbitMQ queue -> JSON Lines file (fsynced, deduplicated).
    AuditConsume {
        /// The JSON Lines file to append to.
        #[arg(long)]
        out: std::path::PathBuf,
        /// The durable queue to declare (bound to '#').
        #[arg(long, env = "VOUCH_AUDIT_QUEUE", default_value = "vouch.audit")]
        queue: String,
        /// The exchange vouch publishes to.
        #[arg(long, env = "VOUCH_EXCHANGE", default_value = "vouch.events")]
        exchange: String,
        /// RabbitMQ URL.
        #[arg(
            long,
            env = "VOUCH_AMQP_URL",
            default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
        )]
        amqp_url: String,
    },
    /// Rebuild the read models from the log (swapped in atomically), check them
    /// for drift (--verify), or build the state as of a moment (--until, --schema).
    Replay {
        /// Postgres URL.
        #[arg(
            long,
            env = "VOUCH_DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/vouch"
        )]
        database_url: String,
        /// Compare a rebuild with the live tables; exit 1 on any drift.
        #[arg(long, conflicts_with = "until")]
        verify: bool,
        /// Stop at this RFC 3339 time or log position.
        #[arg(long, requires = "schema")]
        until: Option<String>,
        /// The schema to build the --until state into (must not exist).
        #[arg(long, requires = "until")]
        schema: Option<String>,
    },
    /// Write a signed export (JSON Lines + manifest) of the log or of one org.
    Export {
        /// The database, the audit key and the checkpoint policy.
        #[command(flatten)]
        settings: Settings,
        /// Only this org's events.
        #[arg(long)]
        org: Option<uuid::Uuid>,
        /// Events at or after this RFC 3339 time.
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Events at or before this RFC 3339 time.
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// The file to write.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Check an export offline; names the first line that fails. Without
    /// `--public-key` only integrity is checked, not who signed it: exit status 3
    /// unless `--unpinned` accepts that.
    VerifyExport {
        /// The export file.
        file: std::path::PathBuf,
        /// The expected signer (base64url Ed25519 public key; see `audit-public-key`).
        #[arg(long)]
        public_key: Option<String>,
        /// Without `--public-key`: accept an export whose signer is not pinned
        /// (integrity only) with exit status 0.
        #[arg(long, conflicts_with = "public_key")]
        unpinned: bool,
    },
    /// Exit 0 if the local service answers `/healthz` (with `--ready`:
    /// `/readyz`) with 200; for container health checks.
    Healthcheck {
        /// The address the service listens on; 0.0.0.0 and [::] are asked on loopback.
        #[arg(long, env = "VOUCH_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
        /// Ask `/readyz` (the database answers) instead of `/healthz` (the process answers).
        #[arg(long)]
        ready: bool,
    },
    /// Print the audit key's public key (to pin in verify-export).
    AuditPublicKey {
        /// The audit key file.
        #[arg(long, env = "VOUCH_AUDIT_KEY_FILE", default_value = "vouch-audit.key")]
        audit_key_file: std::path::PathBuf,
    },
    /// Manage JWT signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Mint a fresh vouch:admin key in the system org (recorded as events) and print it.
    MintAdminKey {
        #[command(flatten)]
        settings: Settings,
        /// Label of the new key.
        #[arg(long, default_value = "operator admin")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a new signing key. It signs once published in the JWKS for
    /// VOUCH_JWKS_PUBLISH_DELAY_SECONDS; older keys stay until their tokens expire.
    Rotate(Settings),
}

/// Writes export lines to a file.
struct FileSink(std::io::BufWriter<std::fs::File>);

impl vouch::audit::export::LineSink for FileSink {
    async fn send(&mut self, line: Vec<u8>) -> std::io::Result<()> {
        use std::io::Write;
        self.0.write_all(&line)?;
        self.0.write_all(b"\n")
    }
}

fn print_key(title: &str, key: &str) {
    let line = "=".repeat(72);
    println!("{line}\n{title}\n\n    {key}\n\nIt is shown only this once: store it now.\n{line}");
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Serve(settings) => {
            let bind = settings.bind.clone();
            let application = Application::build(settings).await?;
            if let Bootstrap::Created(issued) = application.bootstrap() {
                print_key(
                    "vouch bootstrap: admin API key (scope vouch:admin)",
                    issued.key.expose(),
                );
            }
            tracing::info!(bind = %bind, port = application.port(), "vouch is serving");
            application.run_until_stopped().await?;
        }
        Command::Migrate(settings) => {
            let pool = store::connect(&settings.database_url, 1).await?;
            migrate::run(&pool).await?;
            tracing::info!("migrations applied");
        }
        Command::AuditConsume {
            out,
            queue,
            exchange,
            amqp_url,
        } => {
            let config = vouch::bus::consumer::ConsumerConfig {
                amqp_url,
                exchange,
                queue,
                out,
            };
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let s = vouch::bus::consumer::run(&config, stop).await?;
            println!(
                "audit-consume: {} received, {} written, {} duplicates dropped, {} rejected",
                s.received, s.written, s.duplicates, s.rejected
            );
        }
        Command::Replay {
            database_url,
            verify,
            until,
            schema,
        } => {
            use vouch::app::replay::{replay, Cutoff, Mode};
            let mode = match (verify, until, schema) {
                (true, _, _) => Mode::Verify,
                (false, Some(until), Some(schema)) => {
                    let cutoff = match until.parse::<i64>() {
                        Ok(position) => Cutoff::Position(position),
                        Err(_) => Cutoff::Time(
                            chrono::DateTime::parse_from_rfc3339(&until)
                                .map_err(|e| {
                                    format!(
                                        "--until {until:?}: not a position or RFC 3339 time ({e})"
                                    )
                                })?
                                .with_timezone(&chrono::Utc),
                        ),
                    };
                    Mode::Until { cutoff, schema }
                }
                _ => Mode::Rebuild,
            };
            let progress = vouch::progress::TaskProgress::new("replay");
            let report = replay(&database_url, mode.clone(), &progress).await?;
            println!("{}", progress.finish());
            match mode {
                Mode::Verify if !report.drift.is_empty() => {
                    for (table, side, row) in &report.drift {
                        println!("drift in {table}: only {side}: {row}");
                    }
                    return Err(
                        format!("replay --verify: {} rows differ", report.drift.len()).into(),
                    );
                }
                Mode::Verify => println!(
                    "replay --verify: no drift in {}",
                    vouch::app::replay::read_models().join(", ")
                ),
                Mode::Until { schema, .. } => println!(
                    "replay --until: {} of {} events applied into schema {schema}",
                    report.applied, report.events
                ),
                Mode::Rebuild => println!("replay: read models rebuilt and swapped in"),
            }
        }
        Command::Export {
            settings,
            org,
            from,
            to,
            out,
        } => {
            let signer = vouch::app::export::ExportSigner {
                key: vouch::audit::key::AuditKey::load_or_create(&settings.audit_key_file)?,
                policy: settings.checkpoint_policy(),
            };
            let pool = store::connect(&settings.database_url, 2).await?;
            migrate::run(&pool).await?;
            let app = App::new(pool, Policy::from_settings(&settings));
            app.prepare_export(&signer).await?;
            let file = std::fs::File::create(&out)?;
            let mut sink = FileSink(std::io::BufWriter::new(file));
            let progress = vouch::progress::TaskProgress::new("export");
            let filter = vouch::audit::export::ExportFilter {
                org_id: org,
                from,
                to,
            };
            app.write_export(&signer, &filter, &mut sink, &|n| progress.advance(n))
                .await?;
            let file = sink.0.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            println!("{}", progress.finish());
        }
        Command::VerifyExport {
            file,
            public_key,
            unpinned,
        } => {
            let verified = vouch::audit::verify::verify_export(&file, public_key.as_deref())?;
            let checkpoint = if verified.checkpoint_checked {
                ", chain checkpoint verified"
            } else {
                ""
            };
            if public_key.is_some() {
                println!(
                    "verify-export: ok: {} events, signed by the pinned key {}{checkpoint}",
                    verified.events, verified.key_id,
                );
                return Ok(());
            }
            println!(
                "verify-export: integrity ok: {} events, consistent with key {}{checkpoint}.\n\
                 ORIGIN NOT CHECKED: no --public-key was given, so the key inside the export \
                 was trusted; anyone can sign an export with a key of their own. Pin vouch's \
                 audit key with --public-key (see `vouch audit-public-key`).",
                verified.events, verified.key_id,
            );
            if !unpinned {
                return Err(Box::new(Unpinned));
            }
        }
        Command::Healthcheck { bind, ready } => healthcheck(&bind, ready).await?,
        Command::AuditPublicKey { audit_key_file } => {
            let key = vouch::audit::key::AuditKey::load_or_create(&audit_key_file)?;
            println!("{} (key id {})", key.public_key(), key.key_id());
        }
        Command::Keys(KeysCommand::Rotate(settings)) => {
            let pool = store::connect(&settings.database_url, 2).await?;
            migrate::run(&pool).await?;
            let app = App::new(pool, Policy::from_settings(&settings));
            let kid = app.rotate_signing_key().await?;
            println!("new signing key: {kid}");
        }
        Command::MintAdminKey { settings, name } => {
            let pool = store::connect(&settings.database_url, 2).await?;
            migrate::run(&pool).await?;
            let app = App::new(pool, Policy::from_settings(&settings));
            if let Bootstrap::Created(issued) = app.bootstrap().await? {
                print_key(
                    "vouch bootstrap: admin API key (scope vouch:admin)",
                    issued.key.expose(),
                );
                return Ok(());
            }
            let issued = app.mint_admin_key(&name).await?;
            print_key(
                "vouch: new admin API key (scope vouch:admin)",
                issued.key.expose(),
            );
        }
    }
    Ok(())
}

/// Asks the service at `bind` for `/healthz` or `/readyz`; an error unless 200.
async fn healthcheck(bind: &str, ready: bool) -> Result<(), Box<dyn std::error::Error>> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    let mut addr: SocketAddr = bind
        .parse()
        .map_err(|e| format!("healthcheck: --bind {bind:?}: {e}"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let path = if ready { "/readyz" } else { "/healthz" };
    let url = format!("http://{addr}{path}");
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .finish();
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("healthcheck: {url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("healthcheck: {url}: {status}").into());
    }
    println!("healthcheck: {url}: {status}");
    Ok(())
}

/// `verify-export` checked integrity only, and `--unpinned` did not accept that.
#[derive(Debug, thiserror::Error)]
#[error("verify-export: the export's signer was not checked (give --public-key, or --unpinned to accept integrity only)")]
struct Unpinned;

/// The exit status of an export that verified, but not against a pinned key.
const EXIT_UNPINNED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    vouch::telemetry::init();
    let outcome = actix_web::rt::System::new().block_on(run(cli));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Unpinned>() => {
            eprintln!("vouch: {e}");
            ExitCode::from(EXIT_UNPINNED)
        }
        Err(e) => {
            let e = vouch::telemetry::error_chain(e.as_ref());
            tracing::error!(error = %e, "vouch stopped with an error");
            eprintln!("vouch: {e}");
            ExitCode::FAILURE
        }
    }
}
