//! RFC 7662 introspection for API-key callers: access tokens and keys.

use super::{App, AppError, Caller, Ctx};
use crate::store::api_keys;

/// The answer of introspection.
#[derive(Debug)]
pub enum Introspection {
    /// Not a valid token for this caller.
    Inactive,
    /// A valid access token.
    AccessToken(crate::auth::jwt::Claims),
    /// A valid API key.
    ApiKey(api_keys::KeyRow),
}

impl App {
    /// RFC 7662 introspection for API-key callers: access tokens and keys.
    pub async fn introspect(&self, ctx: &Ctx, token: &str) -> Result<Introspection, AppError> {
        let own_org = match &ctx.caller {
            c if c.is_admin() => None,
            Caller::ApiKey { org_id, .. } => Some(*org_id),
            _ => return Err(AppError::Forbidden("introspection needs an API key")),
        };
        if token.starts_with(crate::auth::api_key::KEY_PREFIX) {
            return Ok(match self.verify_key_for(own_org, token).await? {
                Some(row) => Introspection::ApiKey(row),
                None => Introspection::Inactive,
            });
        }
        let Ok(claims) = self.verify_jwt(token).await else {
            return Ok(Introspection::Inactive);
        };
        Ok(
            match self.require_live_session(claims.sid, claims.sub).await {
                Ok(()) => Introspection::AccessToken(claims),
                Err(AppError::Unauthenticated) => Introspection::Inactive,
                Err(e) => return Err(e),
            },
        )
    }
}
