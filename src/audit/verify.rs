//! `vouch verify-export`: checks an export offline with only a public key and
//! names the first line that fails.

use super::canonical::{canonical, is_sealed_digest, link, personal_paths, GENESIS};
use super::chainer::checkpoint_message;
use super::key::{key_id_of, verify_signature};
use crate::auth::api_key::{hex, hex32};
use crate::store::events::LogPosition;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::BufRead;

/// A verified export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Events checked.
    pub events: u64,
    /// The key that signed the manifest.
    pub key_id: String,
    /// Whether a signed chain checkpoint inside the export was checked too.
    pub checkpoint_checked: bool,
}

/// The first thing that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A line (1-based) failed.
    #[error("line {line}: {reason}")]
    Line {
        /// The line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be read.
    #[error("reading the export: {0}")]
    Io(String),
}

fn fail(line: usize, reason: impl Into<String>) -> VerifyError {
    VerifyError::Line {
        line,
        reason: reason.into(),
    }
}

fn lines(
    path: &std::path::Path,
) -> Result<impl Iterator<Item = Result<Vec<u8>, VerifyError>>, VerifyError> {
    let file = std::fs::File::open(path).map_err(|e| VerifyError::Io(e.to_string()))?;
    Ok(std::io::BufReader::new(file)
        .split(b'\n')
        .map(|l| l.map_err(|e| VerifyError::Io(e.to_string()))))
}

fn hash32(v: &Value, line: usize, field: &str) -> Result<[u8; 32], VerifyError> {
    let text = v[field]
        .as_str()
        .ok_or_else(|| fail(line, format!("{field} missing")))?;
    hex32(text).ok_or_else(|| fail(line, format!("{field} is not a SHA-256")))
}

/// Verifies the export at `path`; `public_key` (base64url), when given, must be the signer.
pub fn verify_export(
    path: &std::path::Path,
    public_key: Option<&str>,
) -> Result<Verified, VerifyError> {
    // First pass: the manifest is the last line.
    let mut total = 0usize;
    let mut last = Vec::new();
    for l in lines(path)? {
        let l = l?;
        if !l.is_empty() {
            total += 1;
            last = l;
        }
    }
    if total == 0 {
        return Err(fail(1, "empty export"));
    }
    let manifest_line = total;
    let outer: Value =
        serde_json::from_slice(&last).map_err(|_| fail(manifest_line, "manifest is not JSON"))?;
    let manifest = &outer["manifest"];
    let signer = manifest["public_key"]
        .as_str()
        .ok_or_else(|| fail(manifest_line, "manifest has no public_key"))?;
    if public_key.is_some_and(|k| k != signer) {
        return Err(fail(
            manifest_line,
            "manifest is signed by another key than the one given",
        ));
    }
    let signature = outer["signature"].as_str().unwrap_or_default();
    if !verify_signature(signer, &canonical(manifest), signature) {
        return Err(fail(manifest_line, "manifest signature does not verify"));
    }
    let checkpoint = manifest.get("checkpoint").filter(|c| !c.is_null());
    let checkpoint_seq = checkpoint.and_then(|c| c["seq"].as_i64());
    let whole_log = manifest["whole_log"].as_bool().unwrap_or(false);

    // Second pass: every event line.
    let mut body = Sha256::new();
    let mut previous: Option<(i64, [u8; 32])> = None;
    let mut checkpoint_checked = false;
    for (i, l) in lines(path)?.enumerate().take(manifest_line - 1) {
        let n = i + 1;
        let l = l?;
        body.update(&l);
        body.update(b"\n");
        let v: Value = serde_json::from_slice(&l).map_err(|_| fail(n, "not JSON"))?;
        let seq = v["seq"].as_i64().ok_or_else(|| fail(n, "seq missing"))?;
        let (prev, hash) = (hash32(&v, n, "prev_hash")?, hash32(&v, n, "hash")?);
        if !v["event"].is_object() {
            return Err(fail(n, "event missing"));
        }
        let event = chained_form(&v).map_err(|reason| fail(n, reason))?;
        if link(&prev, &canonical(&event)) != hash {
            return Err(fail(n, "the event does not match its chain hash (altered)"));
        }
        match previous {
            Some((p, _)) if seq <= p => return Err(fail(n, "seq does not increase")),
            Some((p, _)) if whole_log && seq != p + 1 => {
                return Err(fail(
                    n,
                    format!(
                        "links {} to {} are missing before this line",
                        p + 1,
                        seq - 1
                    ),
                ))
            }
            None if whole_log && seq != 1 => {
                return Err(fail(n, "the whole-log export does not start at link 1"))
            }
            Some((p, h)) if seq == p + 1 && prev != h => {
                return Err(fail(
                    n,
                    "prev_hash differs from the previous line's hash (chain broken)",
                ))
            }
            None if seq == 1 && prev != GENESIS => {
                return Err(fail(n, "the first link does not start at the genesis"))
            }
            _ => {}
        }
        if checkpoint_seq == Some(seq) {
            if hex(&hash)
                != checkpoint
                    .and_then(|c| c["head"].as_str())
                    .unwrap_or_default()
            {
                return Err(fail(n, "the hash differs from the signed checkpoint"));
            }
            checkpoint_checked = true;
        }
        previous = Some((seq, hash));
    }
    let events = (manifest_line - 1) as u64;
    if manifest["count"].as_u64() != Some(events) {
        return Err(fail(
            manifest_line,
            format!(
                "manifest counts {} events, the file has {events}",
                manifest["count"]
            ),
        ));
    }
    if manifest["body_sha256"].as_str() != Some(hex(&body.finalize()).as_str()) {
        return Err(fail(
            manifest_line,
            "the body's SHA-256 differs from the manifest's (lines added, removed or changed)",
        ));
    }
    if manifest["last_seq"].as_i64() != previous.map(|(s, _)| s) {
        return Err(fail(manifest_line, "last_seq does not match the last line"));
    }
    if let Some(head) = manifest["chain_head"].as_str() {
        if previous.map(|(_, h)| hex(&h)).as_deref() != Some(head) {
            return Err(fail(
                manifest_line,
                "chain_head does not match the last line",
            ));
        }
    }
    if let Some(c) = checkpoint {
        verify_checkpoint(c).map_err(|reason| fail(manifest_line, reason))?;
    }
    let key_id = URL_SAFE_NO_PAD
        .decode(signer)
        .map(|k| key_id_of(&k))
        .unwrap_or_default();
    Ok(Verified {
        events,
        key_id,
        checkpoint_checked,
    })
}

/// The audit form a line's event was chained as: the event with each field
/// named in `sealed` (shown opened, or erased) replaced by its digest.
fn chained_form(line: &Value) -> Result<Value, String> {
    let mut event = line["event"].clone();
    let Some(sealed) = line.get("sealed") else {
        return Ok(event);
    };
    let sealed = sealed.as_object().ok_or("sealed is not an object")?;
    let event_type = event["event_type"].as_str().unwrap_or_default().to_owned();
    for (path, digest) in sealed {
        let (section, field) = path.split_once('.').unwrap_or_default();
        if !personal_paths(&event_type).any(|p| p == (section, field)) {
            return Err(format!(
                "sealed names {path}, not a personal field of {event_type}"
            ));
        }
        let digest = digest
            .as_str()
            .filter(|d| is_sealed_digest(d))
            .ok_or_else(|| format!("sealed {path} is not a digest"))?;
        let slot = event[section]
            .get_mut(field)
            .ok_or_else(|| format!("sealed names {path}, which the event does not hold"))?;
        *slot = Value::String(digest.to_owned());
    }
    Ok(event)
}

fn verify_checkpoint(c: &Value) -> Result<(), String> {
    let get = |f: &str| {
        c[f].as_str()
            .ok_or_else(|| format!("checkpoint {f} missing"))
    };
    let head: [u8; 32] = hex32(get("head")?).ok_or("checkpoint head malformed")?;
    let signed_at: DateTime<Utc> = get("signed_at")?
        .parse()
        .map_err(|_| "checkpoint signed_at malformed")?;
    let cursor = LogPosition {
        transaction_id: get("transaction_id")?
            .parse()
            .map_err(|_| "checkpoint transaction_id malformed")?,
        position: c["position"]
            .as_i64()
            .ok_or("checkpoint position missing")?,
    };
    let message = checkpoint_message(
        c["seq"].as_i64().unwrap_or_default(),
        cursor,
        &head,
        signed_at,
        get("key_id")?,
    );
    if verify_signature(get("public_key")?, &message, get("signature")?) {
        Ok(())
    } else {
        Err("the chain checkpoint's signature does not verify".into())
    }
}
