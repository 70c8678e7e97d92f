//! Throttling of sign-ins and sign-ups, shared by every instance through Postgres.
//!
//! An attempt is reserved before the password is checked and counts as a
//! failure until it is settled, so parallel guesses cannot slip past the limit.

use super::{App, AppError};
use crate::store::attempts::{self, Bucket};
use chrono::{DateTime, Duration, Utc};

/// A reserved sign-in attempt, settled once the password was checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt(i64);

/// Seconds until enough of `times` (ascending) leave a window of `window` for
/// the count to drop below `limit`; `None` when under the limit.
fn retry_after(
    times: &[DateTime<Utc>],
    limit: usize,
    window: Duration,
    now: DateTime<Utc>,
) -> Option<u64> {
    if times.len() < limit.max(1) {
        return None;
    }
    let leaves = times[times.len() - limit.max(1)] + window;
    Some((leaves - now).num_seconds().max(0) as u64 + 1)
}

impl App {
    /// Reserves a sign-in attempt for `email` from `ip`, or answers 429.
    pub(crate) async fn reserve_sign_in(
        &self,
        email: &str,
        ip: Option<&str>,
    ) -> Result<Attempt, AppError> {
        // The table holds keyed indexes of the email and address, never them.
        let keyring = self.keyring()?;
        let email = &keyring.blind("email", email);
        let ip = ip.map(|ip| keyring.blind("ip", ip));
        let ip = ip.as_deref();
        let policy = &self.policy.auth;
        let now = self.clock.now();
        let email_window = Duration::seconds(policy.signin_email_window_seconds);
        let ip_window = Duration::seconds(policy.signin_ip_window_seconds);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Parallel requests of one email or address are counted one after another.
        attempts::lock_sign_in(&tx, email, ip).await?;
        let failures = attempts::find_sign_in_failures(&tx, email, now - email_window).await?;
        let mut wait = retry_after(&failures, policy.signin_email_failures, email_window, now);
        if let Some(ip) = ip {
            let tried = attempts::find_sign_ins_from(&tx, ip, now - ip_window).await?;
            wait = wait.max(retry_after(
                &tried,
                policy.signin_ip_attempts,
                ip_window,
                now,
            ));
        }
        if let Some(retry_after) = wait {
            return Err(AppError::RateLimited { retry_after });
        }
        let id = attempts::create_sign_in(&tx, email, ip, now).await?;
        tx.commit().await?;
        Ok(Attempt(id))
    }

    /// Records whether a reserved attempt failed.
    pub(crate) async fn settle(&self, attempt: Attempt, failed: bool) -> Result<(), AppError> {
        let client = self.pool.get().await?;
        attempts::settle(&client, attempt.0, failed).await?;
        Ok(())
    }

    /// Counts a sign-up from `ip`, or answers 429.
    pub(crate) async fn reserve_sign_up(&self, ip: Option<&str>) -> Result<(), AppError> {
        let Some(ip) = ip else { return Ok(()) };
        let ip = &self.keyring()?.blind("ip", ip);
        let now = self.clock.now();
        let window = Duration::seconds(60);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Parallel sign-ups from one address are counted one after another.
        attempts::lock_sign_up(&tx, ip).await?;
        let tried = attempts::find_sign_ups_from(&tx, ip, now - window).await?;
        if let Some(retry_after) =
            retry_after(&tried, self.policy.auth.signup_ip_attempts, window, now)
        {
            return Err(AppError::RateLimited { retry_after });
        }
        attempts::create_sign_up(&tx, ip, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Counts a mail asked for `email` from `ip`, or answers 429. Known and
    /// unknown addresses are counted alike (a reset's answer tells nothing).
    pub(crate) async fn reserve_mail(&self, email: &str, ip: Option<&str>) -> Result<(), AppError> {
        let keyring = self.keyring()?;
        let email = &keyring.blind("mail", email);
        let ip = ip.map(|ip| keyring.blind("ip", ip));
        let policy = &self.policy.auth;
        let now = self.clock.now();
        let window = Duration::seconds(policy.mail_window_seconds);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        attempts::lock_bucket(&tx, Bucket::Mail, email).await?;
        let asked = attempts::find_bucket_times(&tx, Bucket::Mail, email, now - window).await?;
        let mut wait = retry_after(&asked, policy.mail_email_requests, window, now);
        if let Some(ip) = ip.as_deref() {
            let from =
                attempts::find_bucket_times_from(&tx, Bucket::Mail, ip, now - window).await?;
            wait = wait.max(retry_after(&from, policy.mail_ip_requests, window, now));
        }
        if let Some(retry_after) = wait {
            return Err(AppError::RateLimited { retry_after });
        }
        attempts::create_bucket_attempt(&tx, Bucket::Mail, email, ip.as_deref(), now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Counts a passkey sign-in started from `ip` as a sign-in attempt from
    /// it (the same limit and window), or answers 429: anyone may start one,
    /// and each stores a ceremony until it expires.
    pub(crate) async fn reserve_ceremony(&self, ip: Option<&str>) -> Result<(), AppError> {
        let key = &self.keyring()?.blind("ip", ip.unwrap_or(""));
        let policy = &self.policy.auth;
        let now = self.clock.now();
        let window = Duration::seconds(policy.signin_ip_window_seconds);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        attempts::lock_bucket(&tx, Bucket::Ceremony, key).await?;
        let started = attempts::find_bucket_times(&tx, Bucket::Ceremony, key, now - window).await?;
        if let Some(retry_after) = retry_after(&started, policy.signin_ip_attempts, window, now) {
            return Err(AppError::RateLimited { retry_after });
        }
        attempts::create_bucket_attempt(&tx, Bucket::Ceremony, key, None, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Refuses (429) a client that presented too many wrong action tokens.
    /// Per client, not per account: anyone can name an account, and a limit
    /// on it would let them lock its owner's valid token out.
    pub(crate) async fn check_token_attempts(&self, ip: Option<&str>) -> Result<(), AppError> {
        let key = self.keyring()?.blind("ip", ip.unwrap_or(""));
        let policy = &self.policy.auth;
        let now = self.clock.now();
        let window = Duration::seconds(policy.mail_window_seconds);
        let client = self.pool.get().await?;
        let failed =
            attempts::find_bucket_times(&client, Bucket::Token, &key, now - window).await?;
        match retry_after(&failed, policy.token_failures, window, now) {
            Some(retry_after) => Err(AppError::RateLimited { retry_after }),
            None => Ok(()),
        }
    }

    /// Counts a wrong action token presented by a client.
    pub(crate) async fn record_token_failure(&self, ip: Option<&str>) -> Result<(), AppError> {
        let key = self.keyring()?.blind("ip", ip.unwrap_or(""));
        let client = self.pool.get().await?;
        attempts::create_bucket_attempt(&client, Bucket::Token, &key, None, self.clock.now())
            .await?;
        Ok(())
    }

    /// Forgets attempts older than every window.
    pub async fn prune_attempts(&self) -> Result<u64, AppError> {
        let auth = &self.policy.auth;
        let longest = auth
            .signin_email_window_seconds
            .max(auth.signin_ip_window_seconds)
            .max(auth.mail_window_seconds)
            .max(60);
        let cutoff = self.clock.now() - Duration::seconds(longest);
        let client = self.pool.get().await?;
        Ok(attempts::delete_before(&client, cutoff).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_counts_until_the_oldest_relevant_attempt_leaves() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let w = Duration::seconds(900);
        let at = |s: i64| t0 + Duration::seconds(s);
        assert_eq!(retry_after(&[at(0), at(10)], 5, w, at(20)), None);
        let five = [at(0), at(10), at(20), at(30), at(40)];
        assert_eq!(retry_after(&five, 5, w, at(50)), Some(851));
        let six = [at(0), at(10), at(20), at(30), at(40), at(45)];
        // The second-oldest must leave too before the count drops below 5.
        assert_eq!(retry_after(&six, 5, w, at(50)), Some(861));
    }
}
