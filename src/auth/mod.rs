//! Credentials: password hashing, the API-key format, constant-time comparison.

pub mod action_token;
pub mod api_key;
pub mod jwt;
pub mod key_file;
pub mod passkey;
pub mod password;
pub mod refresh_token;
pub mod seal;
pub mod totp;
