//! Settings from `VOUCH_*` environment variables, with defaults that work on a
//! developer machine with local Postgres and RabbitMQ.

use clap::Args;

/// Everything `vouch serve` needs to run.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Postgres URL; the database is created if it does not exist.
    #[arg(
        long,
        env = "VOUCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/vouch"
    )]
    pub database_url: String,

    /// RabbitMQ URL.
    #[arg(
        long,
        env = "VOUCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,

    /// Address to listen on (host:port; port 0 picks a free one).
    #[arg(long, env = "VOUCH_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// Whether anyone may sign up; if false only `vouch:admin` creates users.
    #[arg(long, env = "VOUCH_OPEN_SIGNUP", default_value_t = true, action = clap::ArgAction::Set)]
    pub open_signup: bool,

    /// Maximum Postgres connections in the pool.
    #[arg(long, env = "VOUCH_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// HTTP worker threads (0: one per core).
    #[arg(long, env = "VOUCH_HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,
}

impl Settings {
    /// Settings for a local database URL, everything else at its default.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            bind: "127.0.0.1:0".into(),
            open_signup: true,
            db_pool_size: 8,
            http_workers: 1,
        }
    }
}
