//! The reference subscriber forgets an erased person: when `user.erased`
//! arrives, every line it wrote with that person's personal fields is
//! rewritten with them read `"[erased]"` (see `docs/personal-data.md`).

use crate::pii::fields::{personal_fields, subject_of, ERASED};
use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::Path;
use uuid::Uuid;

/// The CloudEvent type that asks subscribers to forget its subject.
const ERASED_TYPE: &str = "vouch.user.erased";

/// The people a CloudEvent asks to forget: the subject of `user.erased`.
pub fn erased_person(event: &Value) -> Option<Uuid> {
    if event["type"] != ERASED_TYPE {
        return None;
    }
    event["subject"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// Erases the personal fields of `people` in one CloudEvent; whether it changed.
fn forget_event(event: &mut Value, people: &HashSet<Uuid>) -> bool {
    let Some(event_type) = event["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("vouch."))
    else {
        return false;
    };
    let event_type = event_type.to_owned();
    let Some(stream) = event["subject"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return false;
    };
    let data = &mut event["data"];
    if !subject_of(&event_type, stream, data).is_some_and(|s| people.contains(&s)) {
        return false;
    }
    let mut changed = false;
    for field in personal_fields(&event_type) {
        if let Some(value) = data
            .get_mut(*field)
            .filter(|v| !v.is_null() && *v != ERASED)
        {
            *value = Value::String(ERASED.into());
            changed = true;
        }
    }
    changed
}

/// Rewrites the JSON Lines file `out` with the personal fields of `people`
/// erased: into a new file beside it, synced, then renamed over it, so a
/// crash leaves either the old file or the new one. Lines of others are
/// kept byte for byte. Returns how many lines changed.
pub fn forget(out: &Path, people: &HashSet<Uuid>) -> std::io::Result<u64> {
    let mut rewritten = Vec::new();
    let mut changed = 0;
    for line in std::io::BufReader::new(std::fs::File::open(out)?).split(b'\n') {
        let line = line?;
        let forgotten = serde_json::from_slice::<Value>(&line)
            .ok()
            .and_then(|mut event| forget_event(&mut event, people).then_some(event));
        match forgotten {
            Some(event) => {
                serde_json::to_writer(&mut rewritten, &event)?;
                changed += 1;
            }
            None => rewritten.extend_from_slice(&line),
        }
        rewritten.push(b'\n');
    }
    if changed == 0 {
        return Ok(0);
    }
    let mut name = out.as_os_str().to_owned();
    name.push(".forgetting");
    let staged = std::path::PathBuf::from(name);
    let mut file = std::fs::File::create(&staged)?;
    file.write_all(&rewritten)?;
    file.sync_all()?;
    std::fs::rename(&staged, out)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_erased_persons_lines_lose_their_personal_fields_and_others_stay_as_written() {
        let (ada, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let session = Uuid::from_u128(3);
        let lines = [
            json!({"id": "1", "type": "vouch.user.registered", "subject": ada,
                   "data": {"email": "ada@example.org", "name": null, "password_hash": "[redacted]"}}),
            json!({"id": "2", "type": "vouch.user.registered", "subject": bob,
                   "data": {"email": "bob@example.org", "name": "Bob"}}),
            json!({"id": "3", "type": "vouch.session.started", "subject": session,
                   "data": {"user_id": ada, "ip": "203.0.113.7", "user_agent": "Ada/1"}}),
            json!({"id": "4", "type": "vouch.user.erased", "subject": ada, "data": {}}),
        ];
        let dir = std::env::temp_dir().join(format!("vouch-forget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("audit.jsonl");
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&out, &text).unwrap();

        assert_eq!(erased_person(&lines[3]), Some(ada));
        assert_eq!(erased_person(&lines[0]), None);
        let people = HashSet::from([ada]);
        assert_eq!(forget(&out, &people).unwrap(), 2);
        let after = std::fs::read_to_string(&out).unwrap();
        for gone in ["ada@example.org", "203.0.113.7", "Ada/1"] {
            assert!(!after.contains(gone), "{gone}");
        }
        let kept: Vec<&str> = text.lines().collect();
        let now: Vec<&str> = after.lines().collect();
        assert_eq!((now[1], now[3]), (kept[1], kept[3]), "others byte for byte");
        let first: Value = serde_json::from_str(now[0]).unwrap();
        assert_eq!(first["data"]["email"], ERASED);
        assert_eq!(first["data"]["name"], Value::Null);
        // Forgetting again changes nothing.
        assert_eq!(forget(&out, &people).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
