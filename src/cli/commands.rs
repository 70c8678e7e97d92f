//! What each command of `vouch` does.

use super::{Command, KeysCommand};
use crate::app::{App, Bootstrap, Policy};
use crate::startup::Application;
use crate::store::{self, migrate};
use std::process::ExitCode;

/// Writes export lines to a file.
struct FileSink(std::io::BufWriter<std::fs::File>);

impl crate::audit::export::LineSink for FileSink {
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

/// Runs one command to its end.
pub async fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
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
            let config = crate::bus::consumer::ConsumerConfig {
                amqp_url,
                exchange,
                queue,
                out,
            };
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let s = crate::bus::consumer::run(&config, stop).await?;
            println!(
                "audit-consume: {} received, {} written, {} duplicates dropped, {} rejected",
                s.received, s.written, s.duplicates, s.rejected
            );
        }
        Command::Replay {
            database_url,
            pii_key_file,
            verify,
            until,
            schema,
        } => {
            use crate::app::replay::{replay, Cutoff, Mode};
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
            let progress = super::progress::TaskProgress::new("replay");
            let report = replay(&database_url, &pii_key_file, mode.clone(), &progress).await?;
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
                    crate::app::replay::read_models().join(", ")
                ),
                Mode::Until { schema, .. } => println!(
                    "replay --until: {} of {} events applied into schema {schema}",
                    report.applied, report.events
                ),
                Mode::Rebuild => println!("replay: read models rebuilt and swapped in"),
            }
        }
        Command::MigratePii(settings) => {
            let key = crate::audit::key::AuditKey::load_or_create(&settings.audit_key_file)?;
            let policy = crate::audit::chainer::CheckpointPolicy::from_settings(&settings);
            let done = crate::app::migrate_pii::migrate_pii(
                &settings.database_url,
                &settings.pii_key_file,
                &key,
                policy,
            )
            .await?;
            match done.rewrite {
                None => println!(
                    "migrate-pii: {} events read; every personal field is sealed already, nothing changed",
                    done.events
                ),
                Some(r) => println!(
                    "migrate-pii: {} of {} events sealed; the chain was recomputed; the replaced head \
                     {} (link {}) is recorded in audit_rewrites, signed by key {}",
                    done.rewritten,
                    done.events,
                    crate::auth::api_key::hex(&r.replaced_head),
                    r.replaced_seq,
                    r.key_id
                ),
            }
        }
        Command::Export {
            settings,
            org,
            from,
            to,
            out,
        } => {
            let signer = crate::app::export::ExportSigner {
                key: crate::audit::key::AuditKey::load_or_create(&settings.audit_key_file)?,
                policy: crate::audit::chainer::CheckpointPolicy::from_settings(&settings),
            };
            let pool = store::connect(&settings.database_url, 2).await?;
            migrate::run(&pool).await?;
            // Exports show personal fields opened (or erased): the key file opens them.
            let kek = crate::pii::startup::open_kek(&pool, &settings.pii_key_file).await?;
            let app = App::new(pool, Policy::from_settings(&settings))
                .with_personal_data(crate::pii::keyring::Keyring::new(kek));
            app.prepare_export(&signer).await?;
            let file = std::fs::File::create(&out)?;
            let mut sink = FileSink(std::io::BufWriter::new(file));
            let progress = super::progress::TaskProgress::new("export");
            let filter = crate::audit::export::ExportFilter {
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
            let verified = crate::audit::verify::verify_export(&file, public_key.as_deref())?;
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
            let key = crate::audit::key::AuditKey::load_or_create(&audit_key_file)?;
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

/// The process's exit status for a command's outcome: 3 for an export
/// verified without a pinned key, 1 for any other failure (logged with its
/// causes).
pub fn exit_code(outcome: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Unpinned>() => {
            eprintln!("vouch: {e}");
            ExitCode::from(EXIT_UNPINNED)
        }
        Err(e) => {
            let e = crate::telemetry::error_chain(e.as_ref());
            tracing::error!(error = %e, "vouch stopped with an error");
            eprintln!("vouch: {e}");
            ExitCode::FAILURE
        }
    }
}
