//! `GET /v1/audit/export`: the signed export, streamed as NDJSON.

use super::error::{ApiError, ErrorBody};
use super::extract::Auth;
use crate::app::export::ExportSigner;
use crate::app::App;
use crate::audit::export::{ExportError, ExportFilter, LineSink};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;
use uuid::Uuid;

/// Export parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only this org's events (required unless the caller holds `vouch:admin`).
    pub org_id: Option<Uuid>,
    /// Events that occurred at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Events that occurred at or before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
}

struct ChannelSink(mpsc::Sender<Result<web::Bytes, std::io::Error>>);

impl LineSink for ChannelSink {
    async fn send(&mut self, mut line: Vec<u8>) -> std::io::Result<()> {
        line.push(b'\n');
        self.0
            .send(Ok(web::Bytes::from(line)))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

fn internal(e: ExportError) -> ApiError {
    ApiError::App(crate::app::AppError::Internal(Box::new(e)))
}

/// A signed export of the log (or of one org), checkable offline with `vouch verify-export`.
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", params(ExportQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = String,
               description = "JSON Lines of events, then a signed manifest line"),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn export_events(
    app: web::Data<App>,
    Auth(ctx): Auth,
    q: web::Query<ExportQuery>,
    signer: web::Data<ExportSigner>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    app.authorize_export(&ctx, q.org_id).await?;
    if q.from.zip(q.to).is_some_and(|(from, to)| from > to) {
        return Err(ApiError::validation("from", "must not be after to"));
    }
    app.prepare_export(&signer).await.map_err(internal)?;
    let filter = ExportFilter {
        org_id: q.org_id,
        from: q.from,
        to: q.to,
    };
    let (tx, rx) = mpsc::channel(64);
    let app = app.into_inner();
    actix_web::rt::spawn(async move {
        let mut sink = ChannelSink(tx.clone());
        if let Err(e) = app.write_export(&signer, &filter, &mut sink, &|_| {}).await {
            tracing::error!(error = %e, "export failed midway");
            let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(body))
}
