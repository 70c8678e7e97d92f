//! Second factors: TOTP enrolment and removal, and the challenge a sign-in
//! of an enrolled user becomes. See `docs/mfa.md`.

use super::sessions::SignedIn;
use super::{App, AppError, Ctx};
use crate::auth::action_token::{ActionToken, Purpose};
use crate::auth::refresh_token::RefreshToken;
use crate::auth::totp::{self, TotpSecret};
use crate::domain::action::Presented;
use crate::domain::session::{AuthMethod, Session, SessionCommand};
use crate::domain::user::{EnrollmentMethod, SecondFactor, User, UserCommand, UserEvent};
use crate::domain::{Aggregate, DomainError, StreamType};
use crate::store::users::UserRow;
use crate::store::{credentials, users};
use chrono::Duration;
use secrecy::SecretString;
use uuid::Uuid;

/// What `POST /v1/users/{id}/mfa/totp` shows once. No `Debug`: every field
/// holds the secret.
pub struct TotpEnrollment {
    /// The secret, base32.
    pub secret: TotpSecret,
    /// The `otpauth://` URI.
    pub otpauth_uri: String,
    /// The URI as a QR code (SVG).
    pub qr_svg: String,
}

/// A sign-in that waits for a second factor.
#[derive(Debug)]
pub struct MfaChallenge {
    /// The challenge token (shown once, single use, five minutes).
    pub mfa_token: ActionToken,
    /// The factors that answer it.
    pub methods: Vec<&'static str>,
}

/// The TOTP issuer shown in authenticator apps.
const ISSUER: &str = "vouch";

impl App {
    fn unix_now(&self) -> u64 {
        u64::try_from(self.clock.now().timestamp()).unwrap_or_default()
    }

    /// The TOTP step `code` matches for `user` now (`None`: wrong, or no TOTP).
    fn totp_step(&self, user: &User, code: &str) -> Result<Option<u64>, AppError> {
        match user.totp_secret() {
            Some(secret) => totp::matching_step(secret, code, self.unix_now())
                .map_err(|e| AppError::Internal(Box::new(e))),
            None => Ok(None),
        }
    }

    /// What a presented code proves for `user`: a TOTP step, or a backup code.
    fn second_factor(&self, user: &User, code: &str) -> Result<SecondFactor, AppError> {
        let code = code.trim();
        if code.len() == usize::from(totp::DIGITS) && code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(SecondFactor::Totp(self.totp_step(user, code)?));
        }
        Ok(SecondFactor::BackupCode(totp::find_backup_code(
            code,
            user.backup_code_hashes(),
        )))
    }

    /// Decides, on the user's stream as it is now, the command `make` builds
    /// from the TOTP step `code` matches (`None`: a wrong code).
    async fn decide_with_step(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        code: &str,
        make: impl Fn(Option<u64>) -> UserCommand,
    ) -> Result<(), AppError> {
        self.retrying(async || {
            let client = self.pool.get().await?;
            let loaded = self.load::<User>(&client, user_id).await?;
            drop(client);
            let command = make(self.totp_step(&loaded.state, code)?);
            self.decide_and_commit(ctx, user_id, None, &loaded, &command)
                .await
        })
        .await
        .map(|_| ())
    }

    /// Begins a TOTP enrolment of the caller: a fresh secret, its URI and QR
    /// code. Another call replaces an enrolment not yet confirmed.
    pub async fn enroll_totp(&self, ctx: &Ctx, user_id: Uuid) -> Result<TotpEnrollment, AppError> {
        Self::require_self(ctx, user_id)?;
        let user = self.user_row(user_id).await?;
        let secret = totp::generate_secret();
        let command = UserCommand::StartTotpEnrollment {
            secret: secret.clone(),
        };
        self.execute::<User>(ctx, user_id, None, &command).await?;
        let bad = |e: totp::BadSecret| AppError::Internal(Box::new(e));
        let otpauth_uri = totp::otpauth_uri(&secret, ISSUER, &user.email).map_err(bad)?;
        let qr_svg = totp::qr_svg(&otpauth_uri).map_err(bad)?;
        Ok(TotpEnrollment {
            secret,
            otpauth_uri,
            qr_svg,
        })
    }

    /// Completes the enrolment with a code of the app; answers the ten
    /// backup codes, shown once.
    pub async fn confirm_totp(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        code: &str,
    ) -> Result<Vec<String>, AppError> {
        Self::require_self(ctx, user_id)?;
        let (codes, hashes) = totp::generate_backup_codes();
        let outcome = self
            .decide_with_step(ctx, user_id, code, |step| UserCommand::ConfirmTotp {
                step,
                backup_code_hashes: hashes.clone(),
            })
            .await;
        if let Err(AppError::Domain(DomainError::InvalidCode)) = outcome {
            self.record_enrollment_failure(ctx, user_id, EnrollmentMethod::Totp, "wrong_code")
                .await?;
        }
        outcome.map(|_| codes)
    }

    /// Replaces the caller's backup codes, proven with a TOTP code; answers
    /// the ten new ones, shown once. A wrong code counts as a failed sign-in.
    pub async fn regenerate_backup_codes(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        code: &str,
    ) -> Result<Vec<String>, AppError> {
        Self::require_self(ctx, user_id)?;
        let (codes, hashes) = totp::generate_backup_codes();
        let outcome = self
            .decide_with_step(ctx, user_id, code, |step| {
                UserCommand::RegenerateBackupCodes {
                    proof: SecondFactor::Totp(step),
                    backup_code_hashes: hashes.clone(),
                }
            })
            .await;
        match outcome {
            Err(AppError::Domain(DomainError::InvalidCode)) => {
                self.count_wrong_factor(ctx, user_id).await?;
                Err(DomainError::InvalidCode.into())
            }
            other => other.map(|_| codes),
        }
    }

    /// Removes TOTP: the user with their password and a code (TOTP or backup),
    /// or a `vouch:admin` caller with neither (a reset, recorded with its actor).
    pub async fn disable_totp(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        proof: Option<(SecretString, String)>,
    ) -> Result<(), AppError> {
        let proof = match proof {
            Some((password, code)) => {
                Self::require_self(ctx, user_id)?;
                self.check_password(ctx, user_id, password).await?;
                Some(code)
            }
            None if ctx.caller.is_admin() => None,
            None => {
                return Err(AppError::Forbidden(
                    "removing TOTP needs current_password and code",
                ))
            }
        };
        let outcome = self
            .retrying(async || {
                let client = self.pool.get().await?;
                let loaded = self.load::<User>(&client, user_id).await?;
                drop(client);
                let proof = match &proof {
                    Some(code) => Some(self.second_factor(&loaded.state, code)?),
                    None => None,
                };
                let command = UserCommand::DisableTotp { proof };
                self.decide_and_commit(ctx, user_id, None, &loaded, &command)
                    .await
            })
            .await;
        match outcome {
            Err(AppError::Domain(DomainError::InvalidCode)) => {
                self.count_wrong_factor(ctx, user_id).await?;
                Err(DomainError::InvalidCode.into())
            }
            other => other.map(|_| ()),
        }
    }

    /// Records a failed enrolment of a second factor (an event of the user).
    pub(crate) async fn record_enrollment_failure(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        method: EnrollmentMethod,
        reason: &str,
    ) -> Result<(), AppError> {
        let command = UserCommand::RecordEnrollmentFailure {
            method,
            reason: reason.into(),
        };
        self.execute::<User>(ctx, user_id, None, &command).await?;
        Ok(())
    }

    /// Counts a wrong second factor as a failed sign-in of the user: in the
    /// throttle (429 once too many) and in the log.
    async fn count_wrong_factor(&self, ctx: &Ctx, user_id: Uuid) -> Result<(), AppError> {
        let user = self.user_row(user_id).await?;
        let attempt = self.reserve_sign_in(&user.email, ctx.ip.as_deref()).await?;
        self.settle(attempt, true).await?;
        self.record_login_failure(ctx, user_id, "wrong_second_factor");
        Ok(())
    }

    /// The challenge a sign-in of an enrolled user with the right password
    /// becomes: recorded, and answered instead of tokens.
    pub(crate) async fn challenge_mfa(
        &self,
        ctx: &Ctx,
        user: &UserRow,
    ) -> Result<MfaChallenge, AppError> {
        let mfa_token = ActionToken::generate(Purpose::MfaChallenge, user.id);
        let command = UserCommand::ChallengeMfa {
            challenge_id: self.clock.new_id(),
            token_hash: mfa_token.hash(),
            expires_at: self.clock.now() + Purpose::MfaChallenge.lifetime(),
        };
        let methods = self
            .retrying(async || {
                let client = self.pool.get().await?;
                let loaded = self.load::<User>(&client, user.id).await?;
                drop(client);
                self.decide_and_commit(ctx, user.id, None, &loaded, &command)
                    .await?;
                Ok(loaded.state.second_factor_methods())
            })
            .await?;
        // Passkeys answer nothing while they are off (no domain to bind to).
        let methods = methods
            .into_iter()
            .filter(|m| *m != "passkey" || self.policy.passkeys.is_some())
            .collect();
        Ok(MfaChallenge { mfa_token, methods })
    }

    /// Answers a sign-in's challenge with a TOTP or backup code: the session
    /// starts (amr `pwd`, `otp`, `mfa`) in the transaction that spends the
    /// challenge and the code. Wrong codes are throttled and counted as
    /// failed sign-ins are; a wrong, used or expired challenge is 401.
    pub async fn complete_mfa(
        &self,
        ctx: &Ctx,
        raw: &str,
        code: &str,
    ) -> Result<SignedIn, AppError> {
        // A wrong challenge counts against the client that sent it, never
        // against the user it names (anyone can name a user).
        self.check_token_attempts(ctx.ip.as_deref()).await?;
        let refused = async || {
            self.record_token_failure(ctx.ip.as_deref()).await?;
            Err(AppError::Unauthenticated)
        };
        let Ok(token) = ActionToken::parse(Purpose::MfaChallenge, raw) else {
            return refused().await;
        };
        let user_id = token.id();
        let challenge = Presented {
            token_hash: token.hash(),
            now: self.clock.now(),
        };
        let pending = {
            let client = self.pool.get().await?;
            let user = users::find_user(&client, user_id).await?;
            let loaded = self.load::<User>(&client, user_id).await?;
            user.filter(|_| loaded.state.accepts_challenge(&challenge))
        };
        let Some(user) = pending else {
            return refused().await;
        };
        // A live challenge: its codes are counted as sign-ins are.
        let attempt = self.reserve_sign_in(&user.email, ctx.ip.as_deref()).await?;
        let amr = vec![AuthMethod::Pwd, AuthMethod::Otp, AuthMethod::Mfa];
        let outcome = self
            .start_session_with(ctx, &user, amr, Some(attempt), |state| {
                let proof = self.second_factor(state, code)?;
                Ok(state.decide(&UserCommand::PassMfa {
                    challenge: challenge.clone(),
                    proof,
                })?)
            })
            .await;
        match outcome {
            Err(AppError::Domain(DomainError::InvalidCode)) => {
                // Counted (settled above) and recorded as a failed sign-in.
                self.record_login_failure(ctx, user_id, "wrong_second_factor");
                Err(DomainError::InvalidCode.into())
            }
            Err(AppError::Domain(DomainError::InvalidToken | DomainError::NotFound)) => {
                Err(AppError::Unauthenticated)
            }
            other => other,
        }
    }

    /// Starts a session of `user` signed in with `amr`, in one transaction
    /// with what `decide` makes of the user's stream (a challenge passed, a
    /// passkey used), decided against its state in that transaction. A user
    /// disabled, or given a new password, since the first check gets no
    /// session (401). A reserved sign-in `attempt` is settled by whether the
    /// session started (what happens after the commit is no failed sign-in).
    pub(crate) async fn start_session_with(
        &self,
        ctx: &Ctx,
        user: &UserRow,
        amr: Vec<AuthMethod>,
        attempt: Option<super::throttle::Attempt>,
        decide: impl Fn(&User) -> Result<Vec<UserEvent>, AppError>,
    ) -> Result<SignedIn, AppError> {
        let user_id = user.id;
        let session_id = self.clock.new_id();
        let refresh_token = RefreshToken::generate(session_id);
        let start = SessionCommand::Start {
            user_id,
            refresh_token_hash: refresh_token.hash(),
            expires_at: self.clock.now() + Duration::seconds(self.policy.auth.session_ttl_seconds),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            amr: amr.clone(),
        };
        let committed = self
            .retrying(async || {
                let mut client = self.pool.get().await?;
                let tx = self.begin(&mut client, ctx).await?;
                if !credentials::lock_credential_for_session(
                    &tx,
                    user_id,
                    &user.password_hash,
                    false,
                )
                .await?
                {
                    return Err(AppError::Unauthenticated);
                }
                let loaded = self.load::<User>(&tx, user_id).await?;
                let decided = decide(&loaded.state)?;
                let changes = [
                    self.change((StreamType::User, user_id), loaded.version, None, &decided)?,
                    self.change(
                        (StreamType::Session, session_id),
                        0,
                        None,
                        &Session::default().decide(&start)?,
                    )?,
                ];
                self.finish(tx, ctx, &changes).await
            })
            .await;
        if let Some(attempt) = attempt {
            self.settle(attempt, committed.is_err()).await?;
        }
        committed?;
        let amr: Vec<String> = amr.iter().map(|m| m.as_str().to_owned()).collect();
        let (access_token, expires_in) = self.sign_access_token(user_id, session_id, &amr).await?;
        let user = users::find_user(&self.pool.get().await?, user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        Ok(SignedIn {
            access_token,
            expires_in,
            refresh_token,
            session_id,
            user,
        })
    }
}
