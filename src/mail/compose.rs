//! What a request event asks to be mailed: recipients, subject, plain-text
//! and HTML bodies from templates, links under the public URL with the token
//! as the `token` query parameter, and a Message-ID derived from the event.

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use serde_json::Value;
use url::Url;
use uuid::Uuid;

/// The event types the mailer sends mail for.
pub const MAIL_EVENTS: [&str; 4] = [
    "user.email_verification_requested",
    "user.password_reset_requested",
    "user.email_change_requested",
    "org.invitation_created",
];

/// One mail, before it is built into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
    /// `<event id>.<n>@<host>`: the same for every resend of this mail.
    pub message_id: String,
}

/// What is needed to write mails: where links point, and who sends.
#[derive(Debug, Clone)]
pub struct Composer {
    public_url: Url,
    from: Mailbox,
}

/// Why the mail settings are not usable.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// `VOUCH_PUBLIC_URL` is not an absolute http(s) URL.
    #[error("VOUCH_PUBLIC_URL: {0}")]
    PublicUrl(String),
    /// `VOUCH_MAIL_FROM` is not a mailbox.
    #[error("VOUCH_MAIL_FROM: {0}")]
    From(String),
    /// A message could not be built (an address that is not one).
    #[error("message: {0}")]
    Message(String),
}

/// The facts of an opened request event that its mails need.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The event's id.
    pub event_id: Uuid,
    /// Its type (one of [`MAIL_EVENTS`]).
    pub event_type: &'a str,
    /// Its payload, personal fields opened.
    pub data: &'a Value,
    /// For an invitation: the org's name.
    pub org_name: Option<&'a str>,
}

impl Composer {
    /// A composer for links under `public_url`, mails from `from`.
    pub fn new(public_url: &str, from: &str) -> Result<Self, ComposeError> {
        let mut url = Url::parse(public_url).map_err(|e| ComposeError::PublicUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ComposeError::PublicUrl("an absolute http(s) URL".into()));
        }
        // Links are joined under it, so it must end as a folder.
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| ComposeError::From(e.to_string()))?;
        Ok(Self {
            public_url: url,
            from,
        })
    }

    /// The link to `page` carrying `token`.
    pub fn link(&self, page: &str, token: &str) -> String {
        let mut url = self
            .public_url
            .join(page)
            .unwrap_or_else(|_| self.public_url.clone());
        url.query_pairs_mut().clear().append_pair("token", token);
        url.into()
    }

    fn message_id(&self, event_id: Uuid, n: u8) -> String {
        let host = self.public_url.host_str().unwrap_or("vouch");
        format!("<{event_id}.{n}@{host}>")
    }

    /// The mails a request asks for, at `now`: none when its token expired
    /// before it could be sent, or its person was erased.
    pub fn mails(&self, request: &Request<'_>, now: DateTime<Utc>) -> Vec<Mail> {
        let text = |field: &str| {
            request
                .data
                .get(field)
                .and_then(Value::as_str)
                .filter(|v| *v != crate::domain::personal::ERASED)
        };
        let expires_at = request
            .data
            .get("expires_at")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        let (Some(to), Some(token), Some(expires_at)) = (text("email"), text("token"), expires_at)
        else {
            return vec![];
        };
        if expires_at <= now {
            return vec![];
        }
        let until = expires_at
            .with_timezone(&Utc)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string();
        let mail =
            |n: u8, to: &str, subject: &str, lines: &[String], link: Option<(&str, String)>| {
                let (text, html) = bodies(lines, link.as_ref().map(|(l, u)| (*l, u.as_str())));
                Mail {
                    to: to.to_owned(),
                    subject: subject.to_owned(),
                    text,
                    html,
                    message_id: self.message_id(request.event_id, n),
                }
            };
        match request.event_type {
            "user.email_verification_requested" => vec![mail(
                0,
                to,
                "Confirm your email address",
                &[format!("Please confirm that {to} is your address. The link works until {until}.")],
                Some(("Confirm my address", self.link("verify-email", token))),
            )],
            "user.password_reset_requested" => vec![mail(
                0,
                to,
                "Reset your password",
                &[
                    format!("Someone asked to reset the password of the account {to}. The link works once, until {until}."),
                    "If it was not you, ignore this mail: your password stays as it is.".into(),
                ],
                Some(("Choose a new password", self.link("reset-password", token))),
            )],
            "user.email_change_requested" => {
                let Some(new_email) = text("new_email") else {
                    return vec![];
                };
                vec![
                    mail(
                        0,
                        new_email,
                        "Confirm your new email address",
                        &[format!("Please confirm that the account {to} moves to {new_email}. The link works until {until}.")],
                        Some(("Confirm the new address", self.link("confirm-email-change", token))),
                    ),
                    mail(
                        1,
                        to,
                        "Your account's email address is changing",
                        &[
                            format!("Someone asked to move the account {to} to another address."),
                            "If it was not you, change your password now and tell your administrator.".into(),
                        ],
                        None,
                    ),
                ]
            }
            "org.invitation_created" => {
                let org = request.org_name.unwrap_or("an organisation");
                let role = text("role").unwrap_or("member");
                vec![mail(
                    0,
                    to,
                    &format!("You are invited to join {org}"),
                    &[format!("You are invited to join {org} as {role}. Sign in (or sign up) with {to}, verify the address, and accept until {until}.")],
                    Some(("Accept the invitation", self.link("accept-invitation", token))),
                )]
            }
            _ => vec![],
        }
    }

    /// Builds the RFC 5322 message of a mail.
    pub fn message(&self, mail: &Mail) -> Result<Message, ComposeError> {
        let to = mail
            .to
            .parse::<Mailbox>()
            .map_err(|e| ComposeError::Message(e.to_string()))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(mail.message_id.clone()))
            .multipart(
                MultiPart::alternative()
                    .singlepart(readable_part(ContentType::TEXT_PLAIN, &mail.text))
                    .singlepart(readable_part(ContentType::TEXT_HTML, &mail.html)),
            )
            .map_err(|e| ComposeError::Message(e.to_string()))
    }
}

/// A body part that stays readable as stored: ASCII text whose lines fit
/// RFC 5322's 998 characters goes as 7bit, so a link with its token reads as
/// one line in a `.eml` file; anything else is encoded as lettre chooses.
fn readable_part(content_type: ContentType, text: &str) -> SinglePart {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let builder = SinglePart::builder().header(content_type);
    let fits = crlf.is_ascii()
        && crlf
            .split("\r\n")
            .all(|line| line.len() <= 998 && !line.contains(['\0', '\r']));
    if fits {
        builder.body(Body::dangerous_pre_encoded(
            crlf.into_bytes(),
            ContentTransferEncoding::SevenBit,
        ))
    } else {
        builder.body(text.to_owned())
    }
}

/// The plain-text and HTML bodies of paragraphs and an optional link.
fn bodies(lines: &[String], link: Option<(&str, &str)>) -> (String, String) {
    let mut text = lines.join("\n\n");
    let mut html = String::from("<!doctype html>\n<html><body>\n");
    for line in lines {
        html.push_str(&format!("<p>{}</p>\n", escape(line)));
    }
    if let Some((label, url)) = link {
        text.push_str(&format!("\n\n{label}: {url}\n"));
        html.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>\n",
            escape(url),
            escape(label)
        ));
    }
    html.push_str("</body></html>\n");
    (text, html)
}

/// Escapes text for HTML (an org's name is anyone's input).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn composer() -> Composer {
        Composer::new(
            "https://app.example.org/account",
            "vouch <no-reply@example.org>",
        )
        .unwrap()
    }

    #[test]
    fn a_reset_mail_links_under_the_public_url_with_its_token() {
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 6, 12, 0, 0).unwrap();
        let data = json!({"email": "ada@example.org", "token": "vpr_abc", "token_hash": "x",
                          "expires_at": (now + chrono::Duration::hours(1)).to_rfc3339()});
        let id = Uuid::from_u128(7);
        let request = Request {
            event_id: id,
            event_type: "user.password_reset_requested",
            data: &data,
            org_name: None,
        };
        let mails = composer().mails(&request, now);
        assert_eq!(mails.len(), 1);
        let link = "https://app.example.org/account/reset-password?token=vpr_abc";
        assert!(mails[0].text.contains(link), "{}", mails[0].text);
        assert!(mails[0].html.contains(link));
        assert_eq!(mails[0].to, "ada@example.org");
        assert_eq!(mails[0].message_id, format!("<{id}.0@app.example.org>"));
        // A resend is the same mail: a receiver drops it by its Message-ID.
        assert_eq!(composer().mails(&request, now), mails);
        let message = composer().message(&mails[0]).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(
            raw.contains(&format!("Message-ID: <{id}.0@app.example.org>")),
            "{raw}"
        );
        // Stored as written: the link and its token read as one line.
        assert!(
            raw.contains(&format!("Choose a new password: {link}\r\n")),
            "{raw}"
        );
    }

    #[test]
    fn no_mail_for_an_expired_token_or_an_erased_person() {
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 6, 12, 0, 0).unwrap();
        let past = (now - chrono::Duration::seconds(1)).to_rfc3339();
        let future = (now + chrono::Duration::hours(1)).to_rfc3339();
        for data in [
            json!({"email": "ada@example.org", "token": "vev_x", "expires_at": past}),
            json!({"email": "[erased]", "token": "[erased]", "expires_at": future}),
        ] {
            let request = Request {
                event_id: Uuid::nil(),
                event_type: "user.email_verification_requested",
                data: &data,
                org_name: None,
            };
            assert!(composer().mails(&request, now).is_empty());
        }
    }

    #[test]
    fn an_email_change_mails_the_token_to_the_new_address_and_a_notice_to_the_old() {
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 6, 12, 0, 0).unwrap();
        let data = json!({"email": "old@example.org", "new_email": "new@example.org", "token": "vec_t",
                          "expires_at": (now + chrono::Duration::hours(1)).to_rfc3339()});
        let request = Request {
            event_id: Uuid::nil(),
            event_type: "user.email_change_requested",
            data: &data,
            org_name: None,
        };
        let mails = composer().mails(&request, now);
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[0].to, "new@example.org");
        assert!(mails[0].text.contains("token=vec_t"));
        assert_eq!(mails[1].to, "old@example.org");
        assert!(!mails[1].text.contains("vec_t") && !mails[1].html.contains("vec_t"));
        assert_ne!(mails[0].message_id, mails[1].message_id);
    }

    #[test]
    fn an_org_name_is_escaped_in_html() {
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 6, 12, 0, 0).unwrap();
        let data = json!({"email": "bob@example.org", "token": "vin_t", "role": "admin",
                          "expires_at": (now + chrono::Duration::days(7)).to_rfc3339()});
        let request = Request {
            event_id: Uuid::nil(),
            event_type: "org.invitation_created",
            data: &data,
            org_name: Some("<b>Acme</b>"),
        };
        let mails = composer().mails(&request, now);
        assert!(mails[0].html.contains("&lt;b&gt;Acme&lt;/b&gt;"));
        assert!(!mails[0].html.contains("<b>Acme"));
    }
}
