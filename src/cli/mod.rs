//! The `vouch` command line: its commands and what each does
//! (`commands.rs`). `main.rs` only parses, sets up the log and runs.

mod commands;
pub mod progress;

pub use commands::{exit_code, run};

use crate::config::{
    Settings, DEFAULT_AMQP_URL, DEFAULT_AUDIT_KEY_FILE, DEFAULT_BIND, DEFAULT_DATABASE_URL,
    DEFAULT_EXCHANGE,
};
use clap::{Parser, Subcommand, ValueEnum};

/// vouch: event-sourced authentication service.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// What to log: a tracing filter such as `info` or `warn,vouch=debug`.
    #[arg(long, env = "VOUCH_LOG", default_value = "info", global = true)]
    pub log: String,
    /// How log lines look on standard error.
    #[arg(long, env = "VOUCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json, global = true)]
    pub log_format: LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object a line.
    Json,
    /// Lines for humans.
    Pretty,
}

/// A command of `vouch`.
#[derive(Debug, Subcommand)]
pub enum Command {
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
        #[arg(long, env = "VOUCH_EXCHANGE", default_value = DEFAULT_EXCHANGE)]
        exchange: String,
        /// RabbitMQ URL.
        #[arg(long, env = "VOUCH_AMQP_URL", default_value = DEFAULT_AMQP_URL)]
        amqp_url: String,
    },
    /// Rebuild the read models from the log (swapped in atomically), check them
    /// for drift (--verify), or build the state as of a moment (--until, --schema).
    Replay {
        /// Postgres URL.
        #[arg(long, env = "VOUCH_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
        /// The personal-data key file: sealed personal fields are opened with it.
        #[arg(long, env = "VOUCH_PII_KEY_FILE", default_value = crate::config::DEFAULT_PII_KEY_FILE)]
        pii_key_file: std::path::PathBuf,
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
    /// Seal the personal fields of a log written before they were sealed: the
    /// one command that rewrites the log. Run it with every instance stopped;
    /// the chain is recomputed and the head it replaces kept, signed, in
    /// `audit_rewrites`. Running it again changes nothing.
    MigratePii(Settings),
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
        /// Base64url may start with `-`: the value is taken as it is.
        #[arg(long, allow_hyphen_values = true)]
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
        #[arg(long, env = "VOUCH_BIND", default_value = DEFAULT_BIND)]
        bind: String,
        /// Ask `/readyz` (the database answers) instead of `/healthz` (the process answers).
        #[arg(long)]
        ready: bool,
    },
    /// Print the audit key's public key (to pin in verify-export).
    AuditPublicKey {
        /// The audit key file.
        #[arg(long, env = "VOUCH_AUDIT_KEY_FILE", default_value = DEFAULT_AUDIT_KEY_FILE)]
        audit_key_file: std::path::PathBuf,
    },
    /// Manage JWT signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Mint a fresh vouch:admin key in the system org (recorded as events) and print it.
    MintAdminKey {
        /// The database and the policy.
        #[command(flatten)]
        settings: Settings,
        /// Label of the new key.
        #[arg(long, default_value = "operator admin")]
        name: String,
    },
}

/// `vouch keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new signing key. It signs once published in the JWKS for
    /// VOUCH_JWKS_PUBLISH_DELAY_SECONDS; older keys stay until their tokens expire.
    Rotate(Settings),
}
