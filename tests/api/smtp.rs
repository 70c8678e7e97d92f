//! A real SMTP server for the tests, on a free port: it speaks enough of RFC
//! 5321 for a client (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps every
//! message it accepted, and can be taken down and brought back to test an
//! outage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub rcpt: Vec<String>,
    /// The message as sent, dot-stuffing undone.
    pub data: String,
}

impl Received {
    /// A header's value (unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// The message with quoted-printable soft breaks and escapes undone, so a
    /// link reads as it was written.
    pub fn decoded(&self) -> String {
        let joined = self.data.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The token of the link `…?token=…` in the mail, if any.
    pub fn token(&self) -> Option<String> {
        let text = self.decoded();
        let at = text.find("?token=")? + "?token=".len();
        Some(
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect(),
        )
    }
}

/// The server: its port and what it received.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    down: Arc<AtomicBool>,
    unknown: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Self {
            port,
            received: Arc::default(),
            down: Arc::default(),
            unknown: Arc::default(),
        };
        let server = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let _ = server.session(stream).await;
                });
            }
        });
        sink
    }

    /// `smtp://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// While down, every connection is refused with 421 (service not available).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Refuses mail to `address` for good, as for a mailbox that does not
    /// exist (550 to its RCPT).
    pub fn refuse_for_good(&self, address: &str) {
        self.unknown.lock().unwrap().push(address.to_owned());
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until a mail to `to` whose subject contains `subject` came.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Received {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(m) = self.received().into_iter().find(|m| {
                m.rcpt.iter().any(|r| r == to)
                    && m.header("Subject").is_some_and(|s| s.contains(subject))
            }) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail to {to} about {subject:?}; received: {:?}",
                self.received()
                    .iter()
                    .map(|m| (m.rcpt.clone(), m.header("Subject")))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` mails to `to` came; returns them in the order they came.
    pub async fn wait_for_count(&self, to: &str, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let mails = self.mails_to(to);
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} mails to {to} came",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The mails to `to`, in the order they came.
    pub fn mails_to(&self, to: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.rcpt.iter().any(|r| r == to))
            .collect()
    }

    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        if self.down.load(Ordering::SeqCst) {
            write.write_all(b"421 test sink is down\r\n").await?;
            return Ok(());
        }
        write.write_all(b"220 sink ESMTP\r\n").await?;
        let mut rcpt = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_owned();
            let verb = command
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                "HELO" => b"250 sink\r\n",
                "MAIL" => {
                    rcpt.clear();
                    b"250 ok\r\n"
                }
                "RCPT" => {
                    let to = command
                        .split_once('<')
                        .and_then(|(_, r)| r.split_once('>'))
                        .map(|(a, _)| a.to_owned())
                        .unwrap_or_default();
                    if self.unknown.lock().unwrap().contains(&to) {
                        b"550 no such mailbox\r\n"
                    } else {
                        rcpt.push(to);
                        b"250 ok\r\n"
                    }
                }
                "DATA" => {
                    write.write_all(b"354 go ahead\r\n").await?;
                    let mut data = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    }
                    if self.down.load(Ordering::SeqCst) {
                        b"451 try again later\r\n"
                    } else {
                        self.received.lock().unwrap().push(Received {
                            rcpt: rcpt.clone(),
                            data,
                        });
                        b"250 queued\r\n"
                    }
                }
                "RSET" | "NOOP" => b"250 ok\r\n",
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => b"502 not implemented\r\n",
            };
            write.write_all(reply).await?;
        }
    }
}

/// `token` with its last character changed: the same shape, another token.
pub fn altered(token: &str) -> String {
    let (head, last) = token.split_at(token.len() - 1);
    format!("{head}{}", if last == "A" { "B" } else { "A" })
}
