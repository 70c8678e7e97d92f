//! Passkeys: registration (the user, with their password), list, rename and
//! removal; sign-in with a passkey alone; a passkey answering a sign-in's
//! challenge. Each ceremony is two requests: the options, whose state is
//! sealed and stored for five minutes, then the authenticator's answer,
//! which takes the state (once). See `docs/mfa.md`.

use super::sessions::SignedIn;
use super::{App, AppError, Ctx};
use crate::auth::action_token::{ActionToken, Purpose as TokenPurpose};
use crate::auth::passkey::{CeremonyError, RelyingParty, VerifiedAssertion};
use crate::auth::seal::ResponseSeal;
use crate::domain::action::Presented;
use crate::domain::session::AuthMethod;
use crate::domain::user::{
    EnrollmentMethod, PasskeyAssertion, PasskeyCredential, PasskeyName, User, UserCommand,
    MAX_PASSKEYS,
};
use crate::domain::{Aggregate, DomainError};
use crate::store::passkeys::{self, PasskeyRow, Purpose};
use crate::store::sessions;
use crate::store::users::{self, UserRow};
use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde_json::Value;
use uuid::Uuid;

/// How long a ceremony waits for the authenticator's answer.
const CEREMONY_MINUTES: i64 = 5;

/// The first half of a ceremony, as answered to the client.
#[derive(Debug)]
pub struct CeremonyStarted {
    /// Names the ceremony in its second request.
    pub ceremony_id: Uuid,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// The options for `navigator.credentials.create()` or `.get()`.
    pub options: Value,
}

fn ceremony_error(e: CeremonyError) -> AppError {
    match e {
        CeremonyError::Malformed(m) => DomainError::invalid("credential", m).into(),
        CeremonyError::Refused(reason) => {
            // The library's verdict (an error's name): no secret in it.
            tracing::info!(%reason, "a passkey ceremony was refused");
            AppError::InvalidPasskey
        }
        CeremonyError::State(_) => AppError::Internal(Box::new(e)),
    }
}

/// What a ceremony's sealed state is bound to: its purpose, id and user.
fn binding(purpose: Purpose, id: Uuid, user_id: Option<Uuid>) -> [Vec<u8>; 4] {
    [
        b"passkey ceremony".to_vec(),
        purpose.as_str().as_bytes().to_vec(),
        id.as_bytes().to_vec(),
        user_id.map(|u| u.as_bytes().to_vec()).unwrap_or_default(),
    ]
}

impl App {
    fn passkey_parts(&self) -> Result<(&RelyingParty, &ResponseSeal), AppError> {
        match (&self.policy.passkeys, &self.ceremonies) {
            (Some(rp), Some(seal)) => Ok((rp, seal)),
            _ => Err(
                DomainError::Conflict("passkeys are off: VOUCH_PUBLIC_URL names no domain").into(),
            ),
        }
    }

    /// Stores a ceremony's state, sealed; answers its first half.
    async fn store_ceremony(
        &self,
        purpose: Purpose,
        user_id: Option<Uuid>,
        started: crate::auth::passkey::Started,
    ) -> Result<CeremonyStarted, AppError> {
        let (_, seal) = self.passkey_parts()?;
        let ceremony_id = self.clock.new_id();
        let now = self.clock.now();
        let expires_at = now + Duration::minutes(CEREMONY_MINUTES);
        let b = binding(purpose, ceremony_id, user_id);
        let sealed = seal.seal(&[&b[0], &b[1], &b[2], &b[3]], &started.state);
        let client = self.pool.get().await?;
        passkeys::create_ceremony(
            &client,
            ceremony_id,
            purpose,
            user_id,
            &sealed,
            expires_at,
            now,
        )
        .await?;
        Ok(CeremonyStarted {
            ceremony_id,
            expires_at,
            options: started.options,
        })
    }

    /// Takes a live ceremony of `user_id` (none: a passwordless sign-in); it
    /// can never be finished again. Its state, opened.
    async fn take_ceremony(
        &self,
        purpose: Purpose,
        ceremony_id: Uuid,
        user_id: Option<Uuid>,
    ) -> Result<Option<Vec<u8>>, AppError> {
        let (_, seal) = self.passkey_parts()?;
        let client = self.pool.get().await?;
        let now = self.clock.now();
        let Some(sealed) =
            passkeys::take_ceremony(&client, ceremony_id, purpose, user_id, now).await?
        else {
            return Ok(None);
        };
        let b = binding(purpose, ceremony_id, user_id);
        let state = seal
            .open(&[&b[0], &b[1], &b[2], &b[3]], &sealed)
            .ok_or_else(|| AppError::Internal("a passkey ceremony's state does not open".into()))?;
        Ok(Some(state))
    }

    /// A user with a second factor manages passkeys only from a session
    /// that passed it: a stolen access token and password are not enough to
    /// add a passkey (which signs in alone) or remove one.
    async fn require_strong_session(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        user: &User,
    ) -> Result<(), AppError> {
        let session_id = Self::require_self(ctx, user_id)?;
        if !user.has_mfa() {
            return Ok(());
        }
        let session = sessions::find_session(&self.pool.get().await?, session_id).await?;
        if session.is_some_and(|s| s.amr.iter().any(|m| m == AuthMethod::Mfa.as_str())) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "sign in with your second factor before managing passkeys",
            ))
        }
    }

    fn credentials_of(user: &User) -> Vec<Value> {
        user.passkey_credentials()
            .into_iter()
            .map(|(_, c)| c.expose().clone())
            .collect()
    }

    /// Begins registering a passkey of the caller, proven with their password.
    pub async fn start_passkey_registration(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        password: SecretString,
    ) -> Result<CeremonyStarted, AppError> {
        Self::require_self(ctx, user_id)?;
        let (rp, _) = self.passkey_parts()?;
        let loaded = self.load::<User>(&self.pool.get().await?, user_id).await?;
        self.require_strong_session(ctx, user_id, &loaded.state)
            .await?;
        let user = self.check_password(ctx, user_id, password).await?;
        if loaded.state.passkey_credentials().len() >= MAX_PASSKEYS {
            return Err(DomainError::Conflict("a user holds at most ten passkeys").into());
        }
        let started = rp
            .start_registration(user_id, &user.email, &Self::credentials_of(&loaded.state))
            .map_err(ceremony_error)?;
        self.store_ceremony(Purpose::Registration, Some(user_id), started)
            .await
    }

    /// Completes a registration with the authenticator's answer: the new
    /// passkey. A refused answer is recorded as a failed enrolment.
    pub async fn finish_passkey_registration(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        ceremony_id: Uuid,
        name: Option<&str>,
        response: &Value,
    ) -> Result<PasskeyRow, AppError> {
        Self::require_self(ctx, user_id)?;
        let (rp, _) = self.passkey_parts()?;
        let name = PasskeyName::parse(name.unwrap_or("Passkey"))?;
        // A malformed answer leaves the ceremony for a proper one.
        rp.check_registration(response).map_err(ceremony_error)?;
        let state = match self
            .take_ceremony(Purpose::Registration, ceremony_id, Some(user_id))
            .await?
        {
            Some(state) => state,
            None => {
                return Err(DomainError::Conflict(
                    "no such passkey registration: it was used, expired or never started",
                )
                .into())
            }
        };
        let new = match rp.finish_registration(&state, response) {
            Ok(new) => new,
            Err(e) => {
                let e = ceremony_error(e);
                if matches!(e, AppError::InvalidPasskey) {
                    self.record_enrollment_failure(
                        ctx,
                        user_id,
                        EnrollmentMethod::Passkey,
                        "ceremony_refused",
                    )
                    .await?;
                }
                return Err(e);
            }
        };
        let passkey_id = self.clock.new_id();
        let command = UserCommand::RegisterPasskey {
            passkey_id,
            name,
            credential_id: new.credential_id,
            credential: PasskeyCredential::new(new.credential),
            backup_eligible: new.backup_eligible,
        };
        self.execute::<User>(ctx, user_id, None, &command).await?;
        self.passkey_row(user_id, passkey_id).await
    }

    async fn passkey_row(&self, user_id: Uuid, passkey_id: Uuid) -> Result<PasskeyRow, AppError> {
        passkeys::find_passkey(&self.pool.get().await?, user_id, passkey_id)
            .await?
            .ok_or(AppError::NotFound)
    }

    /// The passkeys of a user (the user or a `vouch:admin`).
    pub async fn list_passkeys(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
    ) -> Result<Vec<PasskeyRow>, AppError> {
        self.require_self_or_admin(ctx, user_id)?;
        self.user_row(user_id).await?;
        Ok(passkeys::find_user_passkeys(&self.pool.get().await?, user_id).await?)
    }

    /// Renames one of the caller's passkeys.
    pub async fn rename_passkey(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        passkey_id: Uuid,
        name: &str,
    ) -> Result<PasskeyRow, AppError> {
        Self::require_self(ctx, user_id)?;
        let command = UserCommand::RenamePasskey {
            passkey_id,
            name: PasskeyName::parse(name)?,
        };
        self.execute::<User>(ctx, user_id, None, &command).await?;
        self.passkey_row(user_id, passkey_id).await
    }

    /// Removes a passkey: the user with their password, or a `vouch:admin`
    /// caller with none (recorded with its actor).
    pub async fn remove_passkey(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        passkey_id: Uuid,
        password: Option<SecretString>,
    ) -> Result<(), AppError> {
        let by_admin = match password {
            Some(password) => {
                Self::require_self(ctx, user_id)?;
                let loaded = self.load::<User>(&self.pool.get().await?, user_id).await?;
                self.require_strong_session(ctx, user_id, &loaded.state)
                    .await?;
                self.check_password(ctx, user_id, password).await?;
                false
            }
            None if ctx.caller.is_admin() => true,
            None => {
                return Err(AppError::Forbidden(
                    "removing a passkey needs current_password",
                ))
            }
        };
        let command = UserCommand::RemovePasskey {
            passkey_id,
            by_admin,
        };
        self.execute::<User>(ctx, user_id, None, &command).await?;
        Ok(())
    }

    /// Begins a sign-in with a passkey alone (discoverable: the authenticator
    /// says whose). Counted per client, as wrong tokens are.
    pub async fn start_passkey_sign_in(&self, ctx: &Ctx) -> Result<CeremonyStarted, AppError> {
        let (rp, _) = self.passkey_parts()?;
        self.reserve_ceremony(ctx.ip.as_deref()).await?;
        let started = rp.start_discoverable().map_err(ceremony_error)?;
        self.store_ceremony(Purpose::SignIn, None, started).await
    }

    /// The user of a live challenge token, or 401 (counted against the client).
    async fn challenged_user(
        &self,
        ctx: &Ctx,
        raw: &str,
    ) -> Result<(UserRow, User, Presented), AppError> {
        self.check_token_attempts(ctx.ip.as_deref()).await?;
        let token = ActionToken::parse(TokenPurpose::MfaChallenge, raw).ok();
        if let Some(token) = token {
            let challenge = Presented {
                token_hash: token.hash(),
                now: self.clock.now(),
            };
            let client = self.pool.get().await?;
            let user = users::find_user(&client, token.id()).await?;
            let loaded = self.load::<User>(&client, token.id()).await?;
            if let Some(user) = user.filter(|_| loaded.state.accepts_challenge(&challenge)) {
                return Ok((user, loaded.state, challenge));
            }
        }
        self.record_token_failure(ctx.ip.as_deref()).await?;
        Err(AppError::Unauthenticated)
    }

    /// Begins a passkey's answer to a sign-in's challenge: an assertion by
    /// one of the challenged user's passkeys.
    pub async fn start_passkey_second_factor(
        &self,
        ctx: &Ctx,
        mfa_token: &str,
    ) -> Result<CeremonyStarted, AppError> {
        let (rp, _) = self.passkey_parts()?;
        let (user, state, _) = self.challenged_user(ctx, mfa_token).await?;
        let credentials = Self::credentials_of(&state);
        if credentials.is_empty() {
            return Err(DomainError::Conflict("the user holds no passkey").into());
        }
        let started = rp.start_assertion(&credentials).map_err(ceremony_error)?;
        self.store_ceremony(Purpose::SecondFactor, Some(user.id), started)
            .await
    }

    /// Finishes a sign-in with a passkey: alone (no `mfa_token`), or as the
    /// second factor of the challenge `mfa_token` names.
    pub async fn finish_passkey_sign_in(
        &self,
        ctx: &Ctx,
        ceremony_id: Uuid,
        response: &Value,
        mfa_token: Option<&str>,
    ) -> Result<SignedIn, AppError> {
        match mfa_token {
            Some(raw) => {
                self.passkey_second_factor(ctx, ceremony_id, response, raw)
                    .await
            }
            None => self.passkey_alone(ctx, ceremony_id, response).await,
        }
    }

    fn amr_of(verified: &VerifiedAssertion) -> AuthMethod {
        if verified.backup_eligible {
            AuthMethod::Swk
        } else {
            AuthMethod::Hwk
        }
    }

    fn assertion(passkey_id: Uuid, verified: VerifiedAssertion) -> PasskeyAssertion {
        PasskeyAssertion {
            passkey_id,
            credential: PasskeyCredential::new(verified.credential),
            counter: verified.counter,
        }
    }

    async fn passkey_alone(
        &self,
        ctx: &Ctx,
        ceremony_id: Uuid,
        response: &Value,
    ) -> Result<SignedIn, AppError> {
        let (rp, _) = self.passkey_parts()?;
        self.check_token_attempts(ctx.ip.as_deref()).await?;
        let refused = async |user_id: Option<Uuid>| {
            self.record_token_failure(ctx.ip.as_deref()).await?;
            if let Some(user_id) = user_id {
                self.record_login_failure(ctx, user_id, "passkey_refused");
            }
            Err(AppError::InvalidPasskey)
        };
        let (credential_id, handle) = rp.identify(response).map_err(ceremony_error)?;
        let Some(state) = self
            .take_ceremony(Purpose::SignIn, ceremony_id, None)
            .await?
        else {
            self.record_token_failure(ctx.ip.as_deref()).await?;
            return Err(AppError::Unauthenticated);
        };
        let client = self.pool.get().await?;
        // The credential must be registered, and to the user the
        // authenticator names.
        let Some(row) = passkeys::find_by_credential_id(&client, &credential_id)
            .await?
            .filter(|row| handle == Some(row.user_id))
        else {
            return refused(None).await;
        };
        let user = users::find_user(&client, row.user_id).await?;
        let loaded = self.load::<User>(&client, row.user_id).await?;
        drop(client);
        let (Some(user), Some((passkey_id, stored))) = (
            user.filter(|u| !u.disabled),
            loaded.state.passkey_by_credential(&credential_id),
        ) else {
            return refused(Some(row.user_id)).await;
        };
        let verified = match rp.finish_discoverable(&state, response, stored.expose()) {
            Ok(verified) => verified,
            Err(e) => match ceremony_error(e) {
                AppError::InvalidPasskey => return refused(Some(user.id)).await,
                e => return Err(e),
            },
        };
        if self.policy.auth.require_verified_email && !user.email_verified {
            return Err(AppError::EmailNotVerified);
        }
        let amr = vec![Self::amr_of(&verified), AuthMethod::Mfa];
        let assertion = Self::assertion(passkey_id, verified);
        let outcome = self
            .start_session_with(ctx, &user, amr, None, |state| {
                Ok(state.decide(&UserCommand::SignInWithPasskey(assertion.clone()))?)
            })
            .await;
        match outcome {
            // Removed (or its user erased) since it was read, or a counter
            // another sign-in moved past in the meantime.
            Err(AppError::Domain(DomainError::NotFound | DomainError::InvalidCode)) => {
                refused(Some(user.id)).await
            }
            other => other,
        }
    }

    async fn passkey_second_factor(
        &self,
        ctx: &Ctx,
        ceremony_id: Uuid,
        response: &Value,
        raw: &str,
    ) -> Result<SignedIn, AppError> {
        let (rp, _) = self.passkey_parts()?;
        let (credential_id, _) = rp.identify(response).map_err(ceremony_error)?;
        let (user, state, challenge) = self.challenged_user(ctx, raw).await?;
        let ceremony = match self
            .take_ceremony(Purpose::SecondFactor, ceremony_id, Some(user.id))
            .await?
        {
            Some(ceremony) => ceremony,
            None => {
                self.record_token_failure(ctx.ip.as_deref()).await?;
                return Err(AppError::Unauthenticated);
            }
        };
        // A live challenge: its answers are counted as sign-ins are.
        let attempt = self.reserve_sign_in(&user.email, ctx.ip.as_deref()).await?;
        let verified = state
            .passkey_by_credential(&credential_id)
            .ok_or(CeremonyError::Refused("not a passkey of this user".into()))
            .and_then(|(id, stored)| {
                rp.finish_assertion(&ceremony, response, stored.expose())
                    .map(|v| (id, v))
            });
        let (passkey_id, verified) = match verified {
            Ok(found) => found,
            Err(e) => {
                self.settle(attempt, true).await?;
                if matches!(e, CeremonyError::Refused(_)) {
                    self.record_login_failure(ctx, user.id, "wrong_second_factor");
                }
                return Err(ceremony_error(e));
            }
        };
        let amr = vec![AuthMethod::Pwd, Self::amr_of(&verified), AuthMethod::Mfa];
        let assertion = Self::assertion(passkey_id, verified);
        let outcome = self
            .start_session_with(ctx, &user, amr, Some(attempt), |state| {
                Ok(state.decide(&UserCommand::PassMfaWithPasskey {
                    challenge: challenge.clone(),
                    assertion: assertion.clone(),
                })?)
            })
            .await;
        match outcome {
            Err(AppError::Domain(DomainError::InvalidToken)) => Err(AppError::Unauthenticated),
            Err(AppError::Domain(DomainError::InvalidCode)) => {
                // Its counter fell behind another sign-in's in the meantime.
                self.record_login_failure(ctx, user.id, "wrong_second_factor");
                Err(AppError::InvalidPasskey)
            }
            other => other,
        }
    }
}
