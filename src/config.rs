//! Settings from `VOUCH_*` environment variables, with defaults that work on a
//! developer machine with local Postgres and RabbitMQ.

use clap::Args;
use sha2::Digest;

/// The database when none is named: created if missing.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/vouch";
/// The broker when none is named.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The address the API listens on when none is named.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// The topic exchange events are published to.
pub const DEFAULT_EXCHANGE: &str = "vouch.events";
/// The audit key file when none is named.
pub const DEFAULT_AUDIT_KEY_FILE: &str = "vouch-audit.key";

/// The personal-data key file when none is named.
pub const DEFAULT_PII_KEY_FILE: &str = "vouch-pii.key";

/// Everything `vouch serve` needs to run.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Postgres URL; the database is created if it does not exist.
    #[arg(long, env = "VOUCH_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// RabbitMQ URL.
    #[arg(long, env = "VOUCH_AMQP_URL", default_value = DEFAULT_AMQP_URL)]
    pub amqp_url: String,

    /// Address to listen on (host:port; port 0 picks a free one).
    #[arg(long, env = "VOUCH_BIND", default_value = DEFAULT_BIND)]
    pub bind: String,

    /// A separate address (host:port) that serves `/metrics` (and `/healthz`,
    /// `/readyz`) for operators; `/metrics` then leaves the public listener.
    /// `off`: `/metrics` is served on the public listener.
    #[arg(long, env = "VOUCH_METRICS_BIND", default_value = "off")]
    pub metrics_bind: String,

    /// Whether anyone may sign up; if false only `vouch:admin` creates users.
    #[arg(long, env = "VOUCH_OPEN_SIGNUP", default_value_t = true, action = clap::ArgAction::Set)]
    pub open_signup: bool,

    /// Maximum Postgres connections in the pool.
    #[arg(long, env = "VOUCH_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// HTTP worker threads (0: one per core).
    #[arg(long, env = "VOUCH_HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,

    /// The RabbitMQ topic exchange events are published to.
    #[arg(long, env = "VOUCH_EXCHANGE", default_value = DEFAULT_EXCHANGE)]
    pub exchange: String,

    /// Whether this instance campaigns to relay the log to RabbitMQ.
    #[arg(long, env = "VOUCH_RELAY", default_value_t = true, action = clap::ArgAction::Set)]
    pub relay: bool,

    /// Events per relay batch (published, then confirmed together).
    #[arg(long, env = "VOUCH_RELAY_BATCH", default_value_t = 500)]
    pub relay_batch: i64,

    /// The Ed25519 audit key (hex seed) that signs checkpoints and exports; created
    /// with mode 0600 if missing. Keep it outside the database and back it up.
    #[arg(long, env = "VOUCH_AUDIT_KEY_FILE", default_value = DEFAULT_AUDIT_KEY_FILE)]
    pub audit_key_file: std::path::PathBuf,

    /// The key-encryption key (hex) that wraps each person's data key; created with
    /// mode 0600 on a database that has none. Every instance on one database needs
    /// the same file; without it, stored personal data cannot be read. Keep it
    /// outside the database and back it up apart from it.
    #[arg(long, env = "VOUCH_PII_KEY_FILE", default_value = DEFAULT_PII_KEY_FILE)]
    pub pii_key_file: std::path::PathBuf,

    /// Whether this instance campaigns to hash-chain the log.
    #[arg(long, env = "VOUCH_CHAINER", default_value_t = true, action = clap::ArgAction::Set)]
    pub chainer: bool,

    /// Sign a chain checkpoint after this many new events...
    #[arg(long, env = "VOUCH_CHECKPOINT_EVENTS", default_value_t = 1000)]
    pub checkpoint_events: i64,

    /// ...or after this many seconds with any new event.
    #[arg(long, env = "VOUCH_CHECKPOINT_SECONDS", default_value_t = 10)]
    pub checkpoint_seconds: u64,

    /// Serve API keys and session liveness from memory, invalidated by NOTIFY.
    #[arg(long, env = "VOUCH_CREDENTIAL_CACHE", default_value_t = true, action = clap::ArgAction::Set)]
    pub credential_cache: bool,

    /// Longest a cached key or session is trusted without a look-up.
    #[arg(long, env = "VOUCH_CREDENTIAL_CACHE_TTL_SECONDS", default_value_t = 60)]
    pub credential_cache_ttl_seconds: u64,

    /// Most keys (and, apart, sessions) the cache holds.
    #[arg(
        long,
        env = "VOUCH_CREDENTIAL_CACHE_ENTRIES",
        default_value_t = 200_000
    )]
    pub credential_cache_entries: usize,

    /// How often batched `last_used_at` values of keys are written.
    #[arg(long, env = "VOUCH_KEY_USAGE_FLUSH_SECONDS", default_value_t = 5)]
    pub key_usage_flush_seconds: u64,

    /// Sessions, tokens and sign-in throttling.
    #[command(flatten)]
    pub auth: AuthSettings,

    /// Mail: where it goes, and the links it carries.
    #[command(flatten)]
    pub mail: MailSettings,
}

/// The folder mails are written to when no transport is named.
pub const DEFAULT_MAIL_DIR: &str = "vouch-mail";

/// Mail: where it goes, and the links it carries.
#[derive(Debug, Clone, Args)]
pub struct MailSettings {
    /// `smtp://[user:pass@]host:port[?starttls=true]` or `file:///dir` (one
    /// `.eml` file per message). Unset: `file://` + the folder `vouch-mail`
    /// in the working directory, beside the key files.
    #[arg(long, env = "VOUCH_MAIL_URL")]
    pub mail_url: Option<String>,

    /// The address mails come from.
    #[arg(
        long,
        env = "VOUCH_MAIL_FROM",
        default_value = "vouch <no-reply@localhost>"
    )]
    pub mail_from: String,

    /// Where the app's pages live: every link in a mail is under it, with its
    /// token as the `token` query parameter. Its host is the passkeys'
    /// relying-party id and its origin the only one their ceremonies accept
    /// (a URL without a domain name turns passkeys off).
    #[arg(
        long,
        env = "VOUCH_PUBLIC_URL",
        default_value = "http://localhost:8080"
    )]
    pub public_url: String,

    /// Whether this instance campaigns to send the mails the log asks for.
    #[arg(long, env = "VOUCH_MAILER", default_value_t = true, action = clap::ArgAction::Set)]
    pub mailer: bool,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            mail_url: None,
            mail_from: "vouch <no-reply@localhost>".into(),
            public_url: "http://localhost:8080".into(),
            mailer: true,
        }
    }
}

/// Sessions, tokens and sign-in throttling.
#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// `iss` of access tokens.
    #[arg(long, env = "VOUCH_JWT_ISSUER", default_value = "vouch")]
    pub jwt_issuer: String,

    /// `aud` of access tokens.
    #[arg(long, env = "VOUCH_JWT_AUDIENCE", default_value = "vouch")]
    pub jwt_audience: String,

    /// Access-token lifetime in seconds.
    #[arg(long, env = "VOUCH_ACCESS_TOKEN_TTL_SECONDS", default_value_t = 900)]
    pub access_token_ttl_seconds: i64,

    /// Absolute session lifetime in seconds (refreshing does not extend it).
    #[arg(long, env = "VOUCH_SESSION_TTL_SECONDS", default_value_t = 30 * 24 * 3600)]
    pub session_ttl_seconds: i64,

    /// Seconds a new signing key is published in the JWKS before it signs.
    #[arg(long, env = "VOUCH_JWKS_PUBLISH_DELAY_SECONDS", default_value_t = 60)]
    pub jwks_publish_delay_seconds: i64,

    /// Seconds a retired key's tokens may still be presented by verifiers with a
    /// slow clock: a key is retired this long after its last token expired.
    #[arg(long, env = "VOUCH_JWKS_RETIRE_MARGIN_SECONDS", default_value_t = 60)]
    pub jwks_retire_margin_seconds: i64,

    /// Failed sign-ins per email within the email window before 429.
    #[arg(long, env = "VOUCH_SIGNIN_EMAIL_FAILURES", default_value_t = 5)]
    pub signin_email_failures: usize,

    /// The email window in seconds.
    #[arg(long, env = "VOUCH_SIGNIN_EMAIL_WINDOW_SECONDS", default_value_t = 900)]
    pub signin_email_window_seconds: i64,

    /// Sign-in attempts per client address within the address window before 429.
    #[arg(long, env = "VOUCH_SIGNIN_IP_ATTEMPTS", default_value_t = 30)]
    pub signin_ip_attempts: usize,

    /// The sign-in address window in seconds.
    #[arg(long, env = "VOUCH_SIGNIN_IP_WINDOW_SECONDS", default_value_t = 60)]
    pub signin_ip_window_seconds: i64,

    /// Sign-ups per client address per minute before 429.
    #[arg(long, env = "VOUCH_SIGNUP_IP_ATTEMPTS", default_value_t = 20)]
    pub signup_ip_attempts: usize,

    /// Whether sign-in waits until the user verified their email (403
    /// `email_not_verified` before).
    #[arg(long, env = "VOUCH_REQUIRE_VERIFIED_EMAIL", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_verified_email: bool,

    /// Mails (verification, reset, email change) asked for one address within
    /// the mail window before 429.
    #[arg(long, env = "VOUCH_MAIL_EMAIL_REQUESTS", default_value_t = 5)]
    pub mail_email_requests: usize,

    /// Mails asked for from one client address within the mail window before 429.
    #[arg(long, env = "VOUCH_MAIL_IP_REQUESTS", default_value_t = 30)]
    pub mail_ip_requests: usize,

    /// The mail window in seconds.
    #[arg(long, env = "VOUCH_MAIL_WINDOW_SECONDS", default_value_t = 900)]
    pub mail_window_seconds: i64,

    /// Wrong action tokens presented from one client address within the mail
    /// window before 429.
    #[arg(long, env = "VOUCH_TOKEN_FAILURES", default_value_t = 20)]
    pub token_failures: usize,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_issuer: "vouch".into(),
            jwt_audience: "vouch".into(),
            access_token_ttl_seconds: 900,
            session_ttl_seconds: 30 * 24 * 3600,
            jwks_publish_delay_seconds: 60,
            jwks_retire_margin_seconds: 60,
            signin_email_failures: 5,
            signin_email_window_seconds: 900,
            signin_ip_attempts: 30,
            signin_ip_window_seconds: 60,
            signup_ip_attempts: 20,
            require_verified_email: false,
            mail_email_requests: 5,
            mail_ip_requests: 30,
            mail_window_seconds: 900,
            token_failures: 20,
        }
    }
}

impl Settings {
    /// Settings for a local database URL, everything else at its default except:
    /// a free port, one worker, no relay or chainer, an audit key in the
    /// temporary directory named after the database (so that instances on one
    /// database share it, as deployed ones must), and new signing keys used at once.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        let database_url = database_url.into();
        let digest = format!("{:x}", sha2::Sha256::digest(database_url.as_bytes()));
        Self {
            audit_key_file: std::env::temp_dir().join(format!("vouch-audit-{}.key", &digest[..32])),
            pii_key_file: std::env::temp_dir().join(format!("vouch-pii-{}.key", &digest[..32])),
            database_url,
            amqp_url: DEFAULT_AMQP_URL.into(),
            bind: "127.0.0.1:0".into(),
            metrics_bind: "off".into(),
            open_signup: true,
            db_pool_size: 8,
            http_workers: 1,
            exchange: DEFAULT_EXCHANGE.into(),
            relay: false,
            relay_batch: 500,
            chainer: false,
            checkpoint_events: 1000,
            checkpoint_seconds: 10,
            credential_cache: true,
            credential_cache_ttl_seconds: 60,
            credential_cache_entries: 200_000,
            key_usage_flush_seconds: 5,
            auth: AuthSettings {
                jwks_publish_delay_seconds: 0,
                ..AuthSettings::default()
            },
            mail: MailSettings {
                mailer: false,
                ..MailSettings::default()
            },
        }
    }
}

impl Settings {
    /// The management listener's address, if `/metrics` has one of its own.
    pub fn metrics_address(&self) -> Option<&str> {
        Some(self.metrics_bind.trim()).filter(|a| !a.is_empty() && *a != "off")
    }
}
