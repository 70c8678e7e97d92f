//! Start-up as a value: build the whole service from [`Settings`], then run it.

use crate::app::{App, Bootstrap, Policy};
use crate::bus::relay::{self, RelayConfig, RelayStatus};
use crate::config::Settings;
use crate::http::{self, metrics::Metrics, ops::BusProbe};
use crate::instance::{Workers, WorkersHandle};
use crate::store::{self, migrate, StoreError};
use actix_web::{dev::Server, middleware::from_fn, web, HttpServer};
use std::net::TcpListener;
use std::sync::Arc;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be prepared.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// Bootstrapping failed.
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] crate::app::AppError),
    /// The address could not be bound.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The audit key file could not be used.
    #[error("{0}")]
    AuditKey(#[from] crate::audit::key::KeyFileError),
    /// The personal-data key file was refused.
    #[error("{0}")]
    PiiKey(#[from] crate::pii::startup::KekError),
    /// The mail settings are not usable.
    #[error("mail: {0}")]
    Mail(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A built, not yet running, service.
pub struct Application {
    server: Server,
    management: Option<(Server, u16)>,
    port: u16,
    app: App,
    bootstrap: Bootstrap,
    workers: Workers,
    relay_status: Arc<RelayStatus>,
}

/// Stops a running instance: its listeners, then its background tasks (the
/// last key usage is written; leaders release their locks).
#[derive(Clone)]
pub struct StopHandle {
    server: actix_web::dev::ServerHandle,
    management: Option<actix_web::dev::ServerHandle>,
    workers: WorkersHandle,
}

impl StopHandle {
    /// Stops the instance; returns once its listeners and its background
    /// tasks have stopped.
    pub async fn stop(&self) {
        if let Some(management) = &self.management {
            management.stop(false).await;
        }
        self.server.stop(false).await;
        self.workers.stop().await;
    }
}

impl Application {
    /// Creates the database if missing, migrates, bootstraps, and binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        // First: a key file that cannot be read or written must stop start-up
        // before the bootstrap commits an admin key it would never print.
        let audit_key = crate::audit::key::AuditKey::load_or_create(&settings.audit_key_file)?;
        let mailer = mailer_settings(&settings)?;
        let listener = bind(&settings.bind)?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let management_listener = settings.metrics_address().map(bind).transpose()?;
        let pool = store::connect(&settings.database_url, settings.db_pool_size).await?;
        migrate::run(&pool).await?;
        // Before the bootstrap too: a wrong key file stops an empty database
        // from starting as well, and the key is checked before anything is written.
        let keyring = crate::pii::keyring::Keyring::new(
            crate::pii::startup::open_kek(&pool, &settings.pii_key_file).await?,
        );
        let app = App::new(pool, Policy::from_settings(&settings))
            .with_personal_data(keyring.clone())
            .with_ceremony_seal(crate::auth::seal::ResponseSeal::new(
                audit_key.derive("vouch passkey ceremonies v1"),
            ));
        let bootstrap = app.bootstrap().await?;
        app.ensure_signing_key().await?;
        let relay_status = Arc::new(RelayStatus::default());
        let policy = crate::audit::chainer::CheckpointPolicy::from_settings(&settings);
        let mut workers = start_workers(&settings, &app, &keyring, &audit_key, &relay_status);
        if let Some((transport, composer)) = mailer {
            let config = crate::mail::MailerConfig {
                database_url: settings.database_url.clone(),
                transport,
                composer,
                keyring: keyring.clone(),
                batch: 500,
            };
            let status = Arc::new(crate::mail::MailerStatus::default());
            workers.spawn_until_stopped(
                "mailer",
                crate::mail::run(app.pool().clone(), config, status),
            );
        }
        let seal = web::Data::new(crate::auth::seal::ResponseSeal::new(
            audit_key.derive("vouch idempotency v1"),
        ));
        let audit = web::Data::new(crate::app::export::ExportSigner {
            key: audit_key,
            policy,
        });
        let metrics = web::Data::new(Metrics::new()?);
        let bus = web::Data::new(BusProbe::new(&settings.amqp_url, relay_status.clone()));
        let data = web::Data::new(app.clone());
        let management = match management_listener {
            Some(listener) => Some(management_server(listener, &data, &metrics, &bus)?),
            None => None,
        };
        let public_metrics = management.is_none();
        let mut server = HttpServer::new(move || {
            actix_web::App::new()
                .wrap(from_fn(http::idempotency::idempotency))
                .wrap(from_fn(http::middleware::request_context))
                .app_data(data.clone())
                .app_data(seal.clone())
                .app_data(metrics.clone())
                .app_data(bus.clone())
                .app_data(audit.clone())
                .configure(|cfg| http::routes(cfg, public_metrics))
        })
        .listen(listener)
        .map_err(|source| StartError::Bind {
            addr: settings.bind.clone(),
            source,
        })?;
        if settings.http_workers > 0 {
            server = server.workers(settings.http_workers);
        }
        Ok(Self {
            server: server.run(),
            management,
            port,
            app,
            bootstrap,
            workers,
            relay_status,
        })
    }

    /// The port the service listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the management listener, if `/metrics` has its own.
    pub fn management_port(&self) -> Option<u16> {
        self.management.as_ref().map(|(_, port)| *port)
    }

    /// The application behind the routes.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// What start-up bootstrapped (the first admin key, on an empty log).
    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// The relay's state on this instance.
    pub fn relay_status(&self) -> Arc<RelayStatus> {
        self.relay_status.clone()
    }

    /// A handle that stops this instance from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.handle(),
            management: self.management.as_ref().map(|(m, _)| m.handle()),
            workers: self.workers.handle(),
        }
    }

    /// Serves until the process is told to stop, then stops the background
    /// tasks and waits for them.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let outcome = match self.management {
            Some((management, _)) => {
                let (public, management) = tokio::join!(self.server, management);
                public.and(management)
            }
            None => self.server.await,
        };
        self.workers.stop().await;
        outcome
    }
}

/// Starts every background task of an instance, each from its own settings
/// and handles: housekeeping, the cache's invalidation listener, the
/// key-usage flusher, the relay and the chainer (the last two only campaign
/// for leadership).
fn start_workers(
    settings: &Settings,
    app: &App,
    keyring: &crate::pii::keyring::Keyring,
    audit_key: &crate::audit::key::AuditKey,
    relay_status: &Arc<RelayStatus>,
) -> Workers {
    use crate::app::maintenance;
    use crate::instance::{invalidation, notifier, usage};
    let mut workers = Workers::default();
    workers.spawn_until_stopped("maintenance", maintenance::run(app.clone()));
    let url = settings.database_url.clone();
    workers.spawn_until_stopped("notifier", notifier::run(app.wakeups().clone(), url));
    if settings.credential_cache {
        let url = settings.database_url.clone();
        workers.spawn_until_stopped("invalidation", invalidation::run(app.cache().clone(), url));
    }
    let every = std::time::Duration::from_secs(settings.key_usage_flush_seconds.max(1));
    let (pool, buffer) = (app.pool().clone(), app.key_usage().clone());
    workers.spawn("key usage", move |stop| {
        usage::run(pool, buffer, every, stop)
    });
    if settings.relay {
        let config = RelayConfig {
            database_url: settings.database_url.clone(),
            amqp_url: settings.amqp_url.clone(),
            exchange: settings.exchange.clone(),
            batch: settings.relay_batch.clamp(1, 10_000),
            keyring: keyring.clone(),
        };
        let relay = relay::run(app.pool().clone(), config, relay_status.clone());
        workers.spawn_until_stopped("relay", relay);
    }
    if settings.chainer {
        let chainer = crate::audit::chainer::run(
            app.pool().clone(),
            settings.database_url.clone(),
            audit_key.clone(),
            crate::audit::chainer::CheckpointPolicy::from_settings(settings),
        );
        workers.spawn_until_stopped("chainer", chainer);
    }
    workers
}

/// The mailer's transport and composer, checked before anything starts;
/// `None` when this instance does not mail.
fn mailer_settings(
    settings: &Settings,
) -> Result<Option<(crate::mail::MailTransport, crate::mail::compose::Composer)>, StartError> {
    let mail = &settings.mail;
    let composer = crate::mail::compose::Composer::new(&mail.public_url, &mail.mail_from)
        .map_err(|e| StartError::Mail(e.to_string()))?;
    if !mail.mailer {
        return Ok(None);
    }
    let url = match &mail.mail_url {
        Some(url) => url.clone(),
        None => {
            let dir = std::env::current_dir()
                .map_err(|e| StartError::Mail(e.to_string()))?
                .join(crate::config::DEFAULT_MAIL_DIR);
            format!("file://{}", dir.display())
        }
    };
    let transport =
        crate::mail::MailTransport::from_url(&url).map_err(|e| StartError::Mail(e.to_string()))?;
    tracing::info!(to = %transport.describe(), "mails go to {}", transport.describe());
    Ok(Some((transport, composer)))
}

/// Binds a listener, before anything is committed: a start-up that cannot
/// listen must not bootstrap an admin key it would never print.
fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Bind {
        addr: addr.to_owned(),
        source,
    })
}

/// The operators' listener: `/metrics`, `/healthz` and `/readyz` on an address
/// of their own, one worker, with the request id and metrics of every request.
fn management_server(
    listener: TcpListener,
    app: &web::Data<App>,
    metrics: &web::Data<Metrics>,
    bus: &web::Data<BusProbe>,
) -> Result<(Server, u16), StartError> {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let addr = listener
        .local_addr()
        .map_or_else(|_| "management listener".to_owned(), |a| a.to_string());
    let (app, metrics, bus) = (app.clone(), metrics.clone(), bus.clone());
    let server = HttpServer::new(move || {
        actix_web::App::new()
            .wrap(from_fn(http::middleware::request_context))
            .app_data(app.clone())
            .app_data(metrics.clone())
            .app_data(bus.clone())
            .configure(http::management_routes)
    })
    .workers(1)
    .listen(listener)
    .map_err(|source| StartError::Bind { addr, source })?
    .run();
    Ok((server, port))
}
