//! The checks behind vouch's fuzz targets, one module per target.
//!
//! Each module's `check` takes one raw fuzz input and panics when a property
//! fails. The targets in `fuzz_targets/` call them, and vouch's test suite
//! runs every file of `fuzz/regressions/<target>/` through the same functions.

pub mod api_key;
pub mod cursor;
pub mod input;
pub mod json_bodies;
pub mod jwt;
