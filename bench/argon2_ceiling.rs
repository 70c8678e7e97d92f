//! The sign-in ceiling of this machine: argon2id hashes per second with vouch's
//! parameters (m = 19456 KiB, t = 2, p = 1), one thread per core.
//!
//! `cargo run --release --example argon2_ceiling -- [seconds]`

use std::time::{Duration, Instant};

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..cores)
        .map(|i| {
            std::thread::spawn(move || {
                let argon = vouch::auth::password::argon2();
                let mut out = [0u8; 32];
                let salt = [i as u8; 16];
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if argon
                        .hash_password_into(b"bench passphrase", &salt, &mut out)
                        .is_ok()
                    {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    let per_second = total as f64 / seconds as f64;
    println!(
        "argon2id m=19456 t=2 p=1: {per_second:.1} hashes/s on {cores} cores ({:.1} per core)",
        per_second / cores as f64
    );
}
