//! 32-byte secrets kept in files outside the database: 64 hex characters,
//! created with mode 0600 by whichever process needs one first.

use crate::auth::api_key::{hex, hex32};
use rand::RngCore;
use std::io::Write;
use std::path::Path;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or creating the file failed.
    #[error("{what} key file {path}: {source}")]
    Io {
        /// Which key.
        what: &'static str,
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file does not hold a key.
    #[error("{what} key file {path}: not 64 hex characters")]
    Malformed {
        /// Which key.
        what: &'static str,
        /// The file.
        path: String,
    },
}

/// Reads the secret in `path`; `None` if the file does not exist.
pub fn read(path: &Path, what: &'static str) -> Result<Option<[u8; 32]>, KeyFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => hex32(text.trim())
            .map(Some)
            .ok_or_else(|| KeyFileError::Malformed {
                what,
                path: path.display().to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyFileError::Io {
            what,
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Reads the secret in `path`, creating the file (mode 0600) with a new random
/// secret if it does not exist. Returns the secret and whether it is new; if
/// another process creates the file first, its secret is used.
pub fn read_or_create(path: &Path, what: &'static str) -> Result<([u8; 32], bool), KeyFileError> {
    if let Some(secret) = read(path, what)? {
        return Ok((secret, false));
    }
    let io = |source| KeyFileError::Io {
        what,
        path: path.display().to_string(),
        source,
    };
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(hex(&secret).as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "created the {what} key file");
            Ok((secret, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let secret = read(path, what)?.ok_or_else(|| io(e))?;
            Ok((secret, false))
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_then_read() {
        let path = std::env::temp_dir().join(format!("vouch-key-file-{}", uuid::Uuid::new_v4()));
        assert!(read(&path, "test").unwrap().is_none());
        let (first, created) = read_or_create(&path, "test").unwrap();
        assert!(created);
        let (again, created) = read_or_create(&path, "test").unwrap();
        assert!(!created);
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not hex").unwrap();
        let err = read(&path, "test").unwrap_err().to_string();
        assert!(err.contains("not 64 hex characters"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
