//! Every input kept under `fuzz/regressions/<target>/` (crashes the fuzz
//! targets found, and seeds) goes through the same checks as its target.
//! See docs/fuzzing.md.

#[path = "../../fuzz/src/api_key.rs"]
mod api_key;
#[path = "../../fuzz/src/cursor.rs"]
mod cursor;
#[path = "../../fuzz/src/input.rs"]
mod input;
#[path = "../../fuzz/src/json_bodies.rs"]
mod json_bodies;
#[path = "../../fuzz/src/jwt.rs"]
mod jwt;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}

/// Runs every input of `target` through `check`; names each one that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let failed: Vec<String> = inputs(target)
        .into_iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            std::panic::catch_unwind(|| check(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target}: failing inputs {failed:#?}");
}

#[test]
fn api_key_inputs_pass() {
    replay("api_key", api_key::check);
}

#[test]
fn jwt_inputs_pass() {
    replay("jwt", jwt::check);
}

#[test]
fn cursor_inputs_pass() {
    replay("cursor", cursor::check);
}

#[test]
fn json_body_inputs_pass() {
    replay("json_bodies", json_bodies::check);
}
