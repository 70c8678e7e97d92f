//! Where mails go: `smtp://[user:pass@]host:port[?starttls=true]` or
//! `file:///dir` (one RFC 5322 `.eml` file per message).

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// How long one SMTP exchange may take before it counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a mail URL or a send failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL is not one vouch sends with.
    #[error("VOUCH_MAIL_URL: {0}")]
    Url(String),
    /// The SMTP server refused or could not be reached.
    #[error("smtp: {0}")]
    Smtp(SmtpFailure),
    /// The mail folder could not be written.
    #[error("mail folder: {0}")]
    File(#[from] lettre::transport::file::Error),
}

/// What went wrong with an SMTP exchange, without the server's reply text:
/// it can name the recipient, and addresses are never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpFailure {
    /// The server refused this message for good (a 5xx reply): sending it
    /// again would fail again.
    pub permanent: bool,
    /// The reply code, if the server answered.
    pub code: Option<String>,
    /// What kind of failure it was.
    pub kind: &'static str,
}

impl std::fmt::Display for SmtpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind)?;
        if let Some(code) = &self.code {
            write!(f, " (reply {code})")?;
        }
        Ok(())
    }
}

impl From<lettre::transport::smtp::Error> for TransportError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        let kind = if e.is_permanent() {
            "the server refused the message for good"
        } else if e.is_transient() {
            "the server refused the message for now"
        } else if e.is_timeout() {
            "the server did not answer in time"
        } else if e.is_tls() {
            "TLS with the server failed"
        } else {
            "could not talk to the server"
        };
        Self::Smtp(SmtpFailure {
            permanent: e.is_permanent(),
            code: e.status().map(|c| c.to_string()),
            kind,
        })
    }
}

impl TransportError {
    /// Whether the message can never be sent (and waiting for it would hold
    /// back every mail after it).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Smtp(f) if f.permanent)
    }
}

/// A configured transport.
#[derive(Clone)]
pub enum MailTransport {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// A folder of `.eml` files.
    File(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

impl std::fmt::Debug for MailTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it can hold a password.
        f.write_str(&self.describe())
    }
}

impl MailTransport {
    /// Parses `VOUCH_MAIL_URL` (the folder is created if missing).
    pub fn from_url(raw: &str) -> Result<Self, TransportError> {
        let url = Url::parse(raw).map_err(|e| TransportError::Url(e.to_string()))?;
        match url.scheme() {
            "smtp" => Self::smtp(&url),
            "file" => {
                let dir = url.to_file_path().map_err(|()| {
                    TransportError::Url("a file URL names a folder: file:///dir".into())
                })?;
                // Mails hold tokens: a folder vouch makes is its owner's alone.
                if !dir.exists() {
                    use std::os::unix::fs::DirBuilderExt;
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(&dir)
                        .map_err(|e| TransportError::Url(format!("{}: {e}", dir.display())))?;
                }
                Ok(Self::File(AsyncFileTransport::new(&dir), dir))
            }
            other => Err(TransportError::Url(format!(
                "scheme {other:?}: use smtp://[user:pass@]host:port[?starttls=true] or file:///dir"
            ))),
        }
    }

    fn smtp(url: &Url) -> Result<Self, TransportError> {
        let host = url
            .host_str()
            .ok_or_else(|| TransportError::Url("smtp:// needs a host".into()))?;
        let mut starttls = false;
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("starttls", "true") => starttls = true,
                ("starttls", "false") => starttls = false,
                _ => {
                    return Err(TransportError::Url(format!(
                        "unknown parameter {key}={value}: only starttls=true|false"
                    )))
                }
            }
        }
        let mut builder = if starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        };
        builder = builder
            .port(url.port().unwrap_or(if starttls { 587 } else { 25 }))
            .timeout(Some(SMTP_TIMEOUT));
        if !url.username().is_empty() {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|s| s.into_owned())
                    .map_err(|_| {
                        TransportError::Url("bad percent-encoding in the credentials".into())
                    })
            };
            let user = decode(url.username())?;
            let password = decode(url.password().unwrap_or(""))?;
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Self::Smtp(builder.build()))
    }

    /// Where mails go, for humans (no credentials).
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(_) => "an SMTP server".into(),
            Self::File(_, dir) => format!("the folder {}", dir.display()),
        }
    }

    /// Sends one message.
    pub async fn send(&self, message: Message) -> Result<(), TransportError> {
        match self {
            Self::Smtp(t) => {
                t.send(message).await?;
            }
            Self::File(t, _) => {
                t.send(message).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_urls_are_smtp_or_a_folder() {
        assert!(matches!(
            MailTransport::from_url("smtp://127.0.0.1:2525"),
            Ok(MailTransport::Smtp(_))
        ));
        assert!(matches!(
            MailTransport::from_url("smtp://u%40x:p%3Aw@mail.example.org:587?starttls=true"),
            Ok(MailTransport::Smtp(_))
        ));
        let dir = std::env::temp_dir().join(format!("vouch-mail-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("file://{}", dir.display());
        assert!(matches!(
            MailTransport::from_url(&url),
            Ok(MailTransport::File(..))
        ));
        assert!(dir.is_dir());
        for bad in [
            "http://x",
            "smtp://h:25?tls=1",
            "not a url",
            "smtp://h:25?starttls=yes",
        ] {
            assert!(MailTransport::from_url(bad).is_err(), "{bad}");
        }
    }
}
