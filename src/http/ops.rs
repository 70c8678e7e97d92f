//! Operational routes: health, readiness, metrics, the OpenAPI document.

use super::metrics::Metrics;
use crate::app::App;
use crate::bus::relay::RelayStatus;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// The bus as this instance sees it, for readiness and metrics.
#[derive(Debug, Clone)]
pub struct BusProbe {
    /// `host:port` of the broker, if the URL could be read.
    pub address: Option<String>,
    /// The relay's state.
    pub relay: Arc<RelayStatus>,
}

impl BusProbe {
    /// Reads host and port from an AMQP URL.
    pub fn new(amqp_url: &str, relay: Arc<RelayStatus>) -> Self {
        let address = url::Url::parse(amqp_url)
            .ok()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port().unwrap_or(5672))));
        Self { address, relay }
    }

    /// The relay leader knows; other instances check that the broker answers.
    async fn is_up(&self) -> bool {
        if self.relay.leader.load(Ordering::SeqCst) {
            return self.relay.connected.load(Ordering::SeqCst);
        }
        let Some(address) = &self.address else {
            return false;
        };
        let connect = tokio::net::TcpStream::connect(address.as_str());
        matches!(
            tokio::time::timeout(Duration::from_secs(1), connect).await,
            Ok(Ok(_))
        )
    }
}

/// The liveness answer: the process runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// Readiness of the service and its dependencies.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// `up` or `down`.
    pub database: String,
    /// `up` or `down`; a down bus does not make the service unready.
    pub bus: String,
}

fn up(ok: bool) -> String {
    if ok { "up" } else { "down" }.into()
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

/// The service can serve: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(app: web::Data<App>, bus: web::Data<BusProbe>) -> HttpResponse {
    let (database, bus) = tokio::join!(app.is_database_up(), bus.is_up());
    let body = Readiness {
        status: if database { "ready" } else { "unavailable" }.into(),
        database: up(database),
        bus: up(bus),
    };
    if database {
        HttpResponse::Ok().json(body)
    } else {
        let mut res = HttpResponse::ServiceUnavailable().json(body);
        res.extensions_mut().insert(super::middleware::FinalBody);
        res
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(
    metrics: web::Data<Metrics>,
    app: web::Data<App>,
    bus: web::Data<BusProbe>,
) -> HttpResponse {
    let lag = app.relay_lag().await.ok();
    metrics.observe_relay(&bus.relay, lag);
    metrics.observe_mailer(app.mailer_lag().await.ok());
    metrics.observe_cache(app.cache());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}
