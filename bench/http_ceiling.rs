//! The HTTP ceiling of this machine: a trivial JSON handler on vouch's HTTP
//! stack (actix-web, one worker per core, serde_json in and out), no database.
//! A vouch route that answers from memory can at best approach this.
//!
//! `cargo run --release --example http_ceiling -- [bind]` (default 127.0.0.1:18090)

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Presented {
    key: String,
}

#[derive(Serialize)]
struct Answer<'a> {
    valid: bool,
    length: usize,
    name: &'a str,
}

async fn echo(body: web::Json<Presented>) -> HttpResponse {
    HttpResponse::Ok().json(Answer {
        valid: body.key.starts_with("vk_"),
        length: body.key.len(),
        name: "ceiling",
    })
}

async fn static_json() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".to_owned());
    HttpServer::new(|| {
        App::new()
            .route("/json", web::post().to(echo))
            .route("/json", web::get().to(static_json))
    })
    .bind(bind)?
    .run()
    .await
}
