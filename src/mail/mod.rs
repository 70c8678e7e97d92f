//! Mail: the log is the outbox. The mailer follows the log and sends what
//! request events ask for (verification, reset, email change, invitation);
//! transports are SMTP (with STARTTLS and auth) or a folder of `.eml` files.

pub mod compose;
pub mod transport;
pub mod worker;

pub use transport::{MailTransport, TransportError};
pub use worker::{run, MailerConfig, MailerStatus};
