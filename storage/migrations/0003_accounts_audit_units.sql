-- Accounts: lockout after failed logins, per-account limits. API keys. The audit trail.
-- Units: effective-dated merges and moves.

ALTER TABLE accounts
    ADD COLUMN failed_logins integer NOT NULL DEFAULT 0,
    ADD COLUMN locked_until timestamptz,
    ADD COLUMN limits jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN created_by bigint REFERENCES accounts (id);

CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts (id),
    label         text NOT NULL,
    key_hash      text NOT NULL UNIQUE,   -- SHA-256 of the key; the key itself is shown once
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_account_idx ON api_keys (account_id);

CREATE TABLE audit_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    account_id   bigint REFERENCES accounts (id),
    unit_id      bigint REFERENCES units (id),
    action       text NOT NULL,
    record_type  text,
    record_id    text,
    status       integer,
    client_addr  text,
    request_id   text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_at_idx ON audit_events (at DESC);
CREATE INDEX audit_events_record_idx ON audit_events (record_id, at DESC);
CREATE INDEX audit_events_account_idx ON audit_events (account_id, at DESC);
CREATE INDEX audit_events_unit_idx ON audit_events (unit_id, at DESC);

-- Append-only: the database itself refuses to change or remove what was recorded.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- A unit lives from valid_from until valid_to (exclusive); a merged unit names its successor.
ALTER TABLE units
    ADD COLUMN valid_from date NOT NULL DEFAULT DATE '1900-01-01',
    ADD COLUMN valid_to date,
    ADD COLUMN successor_id bigint REFERENCES units (id);
CREATE INDEX units_successor_idx ON units (successor_id) WHERE successor_id IS NOT NULL;

-- Every change of the tree, so the tree as it stood on any date can be read back.
CREATE TABLE unit_changes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unit_id         bigint NOT NULL REFERENCES units (id),
    kind            text NOT NULL CHECK (kind IN ('merge', 'move')),
    effective_on    date NOT NULL,
    old_parent_id   bigint REFERENCES units (id),
    new_parent_id   bigint REFERENCES units (id),
    successor_id    bigint REFERENCES units (id),
    recorded_by     bigint REFERENCES accounts (id),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX unit_changes_unit_idx ON unit_changes (unit_id, effective_on);
