#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_fuzz::jwt::check(data));
