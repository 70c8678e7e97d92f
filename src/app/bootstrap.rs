//! First start: the `system` org and an admin key; later, fresh admin keys for operators.

use super::keys::{IssuedKey, KeyRequest};
use super::{App, AppError, Ctx};
use crate::auth::api_key::PresentedKey;
use crate::domain::api_key::{ApiKey, ApiKeyCommand, NewKey};
use crate::domain::org::{Org, OrgCommand};
use crate::domain::values::{KeyName, OrgName, Scopes, Slug, SCOPE_ADMIN};
use crate::domain::{Aggregate, DomainError, StreamType};
use crate::store::{api_keys, events, orgs};

/// The slug of the org that holds admin keys.
pub const SYSTEM_SLUG: &str = "system";

/// What start-up found or did.
#[derive(Debug)]
pub enum Bootstrap {
    /// The log already had events: nothing to do.
    AlreadyDone,
    /// The log was empty: here is the first admin key, to be printed once.
    Created(Box<IssuedKey>),
}

fn domain_bug(e: DomainError) -> AppError {
    AppError::Internal(Box::new(e))
}

impl App {
    /// On an empty log, creates the `system` org and one `vouch:admin` key in
    /// one transaction. Instances racing here: one wins, the others see the slug taken.
    pub async fn bootstrap(&self) -> Result<Bootstrap, AppError> {
        let client = self.pool.get().await?;
        if !events::is_log_empty(&client).await? {
            return Ok(Bootstrap::AlreadyDone);
        }
        drop(client);
        let ctx = Ctx::system("bootstrap");
        let org_id = self.clock.new_id();
        let key_id = self.clock.new_id();
        let key = PresentedKey::generate();
        let create_org = Org::default()
            .decide(&OrgCommand::Create {
                name: OrgName::parse("System").map_err(domain_bug)?,
                slug: Slug::parse(SYSTEM_SLUG).map_err(domain_bug)?,
                created_by: None,
                owner: None,
            })
            .map_err(domain_bug)?;
        let create_key = ApiKey::default()
            .decide(&ApiKeyCommand::Create {
                key: Box::new(NewKey {
                    org_id,
                    name: KeyName::parse("bootstrap admin").map_err(domain_bug)?,
                    prefix: key.display_prefix(),
                    key_hash: key.hash(),
                    scopes: Scopes::parse(&[SCOPE_ADMIN]).map_err(domain_bug)?,
                    expires_at: None,
                    rotated_from: None,
                }),
                now: self.clock.now(),
            })
            .map_err(domain_bug)?;
        let changes = [
            self.change((StreamType::Org, org_id), 0, Some(org_id), &create_org)?,
            self.change((StreamType::ApiKey, key_id), 0, Some(org_id), &create_key)?,
        ];
        match self.commit(&ctx, &changes).await {
            Ok(_) => {}
            Err(AppError::SlugTaken) => return Ok(Bootstrap::AlreadyDone),
            Err(e) => return Err(e),
        }
        let client = self.pool.get().await?;
        let row = api_keys::find_key(&client, key_id)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(Bootstrap::Created(Box::new(IssuedKey { row, key })))
    }

    /// Mints a fresh `vouch:admin` key in the `system` org (operator CLI),
    /// recorded as events like any other.
    pub async fn mint_admin_key(&self, name: &str) -> Result<IssuedKey, AppError> {
        let client = self.pool.get().await?;
        let org = orgs::find_org_by_slug(&client, SYSTEM_SLUG)
            .await?
            .ok_or(AppError::NotFound)?;
        drop(client);
        let ctx = Ctx::system("cli");
        let req = KeyRequest {
            name: KeyName::parse(name)?,
            scopes: Scopes::parse(&[SCOPE_ADMIN])?,
            expires_at: None,
        };
        self.issue_key(&ctx, org.id, req, None).await
    }
}
