-- Erasure (docs/personal-data.md). An erased user keeps a row without email
-- or name: the id stays taken, the email is free for someone new, and a
-- look-up by id finds no one (erased_at is set).
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
ALTER TABLE users ADD COLUMN erased_at timestamptz;
ALTER TABLE users ADD CONSTRAINT users_erased_hold_nothing_personal
    CHECK (erased_at IS NULL OR (email IS NULL AND name IS NULL));
