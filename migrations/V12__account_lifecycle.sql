-- Account lifecycle (docs/account-lifecycle.md).

-- Whether the user proved their current address (user.email_verified, or an
-- email change confirmed with the token mailed to the new address).
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;

-- Invitations to orgs: a projection of org.invitation_* events. The email is
-- the invitee's, normalised as at sign-up; the token is only ever stored as
-- its SHA-256 (in the log), never here. A pending invitation past expires_at
-- is expired when read (projections do not read clocks).
CREATE TABLE invitations (
    id          uuid PRIMARY KEY,
    org_id      uuid        NOT NULL,
    email       text,
    role        text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('pending', 'accepted', 'revoked')),
    invited_by  uuid,
    accepted_by uuid,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX invitations_org_id ON invitations (org_id, id);
CREATE INDEX invitations_accepted_by ON invitations (accepted_by) WHERE accepted_by IS NOT NULL;
-- Erasure finds the invitations sent to a person's address.
CREATE INDEX invitations_email ON invitations (email) WHERE email IS NOT NULL;

-- Mail throttles and confirmation attempts are counted in auth_attempts
-- under their own kinds (keyed indexes, never addresses).
ALTER TABLE auth_attempts DROP CONSTRAINT auth_attempts_kind_check;
ALTER TABLE auth_attempts ADD CONSTRAINT auth_attempts_kind_check
    CHECK (kind IN ('signin', 'signup', 'mail', 'token'));
