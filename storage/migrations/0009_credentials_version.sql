-- A password reset or change ends every sign-in made before it: tokens carry the account's
-- credentials version and are refused once it moves on.
ALTER TABLE accounts ADD COLUMN credentials_version integer NOT NULL DEFAULT 0;
