//! Personal data, encrypted per person so that it can be forgotten while the
//! log stays append-only (crypto-shredding; `docs/personal-data.md`).
//!
//! - [`fields`]: which fields are personal, whose, and their sealed form;
//! - [`keyring`]: each person's data key, created on first use, destroyed by erasure;
//! - [`keys`]: the key-encryption key (KEK) from `VOUCH_PII_KEY_FILE`, and each
//!   person's data key, wrapped by the KEK;
//! - [`startup`]: the checks that refuse a wrong, lost or foreign KEK.

pub mod fields;
pub mod keyring;
pub mod keys;
pub mod startup;

pub use keys::{DataKey, Kek, PiiError};
