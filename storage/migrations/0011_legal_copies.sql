-- Digitized copies with legal standing (Circular 01/2023/TT-VPCP): the signature policy per unit and
-- file kind, the digitization result code of each accepted result, and the organisation's signed copies.

-- The unit's signer: reads its units' records and signs copies with the unit's certificate.
ALTER TABLE accounts DROP CONSTRAINT accounts_role_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_role_check
    CHECK (role IN ('province_admin', 'unit_admin', 'operator', 'viewer', 'one_stop', 'signer'));

-- What an unsigned or badly signed file gets at inspection, per unit and file kind. A unit without a
-- row takes its nearest ancestor's, and the province without one the settings' default.
CREATE TABLE signature_policies (
    unit_id     bigint NOT NULL REFERENCES units (id),
    file_kind   text NOT NULL CHECK (file_kind IN ('component', 'result')),
    policy      text NOT NULL CHECK (policy IN ('off', 'warn', 'reject')),
    updated_by  bigint REFERENCES accounts (id),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit_id, file_kind)
);

-- The policy that applies to a unit's files of a kind: its own, else its nearest ancestor's (NULL: none
-- sets one, and the settings' default applies).
CREATE FUNCTION signature_policy_of(unit bigint, kind text) RETURNS text LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up(id, depth) AS (
        SELECT unit, 0
        UNION ALL
        SELECT u.parent_id, up.depth + 1 FROM units u JOIN up ON u.id = up.id
        WHERE u.parent_id IS NOT NULL AND up.depth < 10
    )
    SELECT p.policy FROM up JOIN signature_policies p ON p.unit_id = up.id AND p.file_kind = kind
    ORDER BY up.depth LIMIT 1
$$;

-- The digitization result code (art. 10): given once to each accepted result, never reused (the
-- sequence only grows; a withdrawn code stays here, withdrawn).
CREATE SEQUENCE result_code_seq;
CREATE TABLE result_codes (
    code              text PRIMARY KEY CHECK (code ~ '^[0-9A-Za-z][0-9A-Za-z._-]{0,79}$'),
    seq               bigint NOT NULL UNIQUE,
    file_id           uuid NOT NULL UNIQUE REFERENCES files (id),
    dossier_id        uuid NOT NULL REFERENCES dossiers (id),
    unit_id           bigint NOT NULL REFERENCES units (id),
    result_type       text,
    holder            text NOT NULL DEFAULT '',
    document_name     text NOT NULL,
    issued_at         timestamptz NOT NULL DEFAULT now(),
    valid_until       date,
    withdrawn_at      timestamptz,
    withdrawn_reason  text
);
CREATE INDEX result_codes_dossier_idx ON result_codes (dossier_id);

-- A file that leaves the warehouse takes its code out of use, in the same transaction.
CREATE FUNCTION result_codes_withdraw() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE result_codes SET withdrawn_at = clock_timestamp(), withdrawn_reason = 'file deleted'
    WHERE file_id = NEW.id AND withdrawn_at IS NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER files_withdraw_result_code AFTER UPDATE OF state ON files
    FOR EACH ROW WHEN (NEW.state = 'deleted' AND OLD.state IS DISTINCT FROM 'deleted')
    EXECUTE FUNCTION result_codes_withdraw();

-- So does a dossier deleted with its files in it.
CREATE FUNCTION result_codes_withdraw_dossier() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE result_codes SET withdrawn_at = clock_timestamp(), withdrawn_reason = 'dossier deleted'
    WHERE dossier_id = NEW.id AND withdrawn_at IS NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER dossiers_withdraw_result_codes AFTER UPDATE OF state ON dossiers
    FOR EACH ROW WHEN (NEW.state = 'deleted' AND OLD.state IS DISTINCT FROM 'deleted')
    EXECUTE FUNCTION result_codes_withdraw_dossier();

-- The organisation's signed copy, kept beside the original (which never changes): the original's bytes
-- with an incremental update holding the QR and the signature.
CREATE TABLE signed_copies (
    id                   uuid PRIMARY KEY,
    file_id              uuid NOT NULL REFERENCES files (id),
    unit_id              bigint NOT NULL REFERENCES units (id),
    object_key           text NOT NULL UNIQUE,
    size                 bigint NOT NULL,
    sha256               text NOT NULL,
    result_code          text REFERENCES result_codes (code),
    certificate_subject  text NOT NULL,
    certificate_serial   text NOT NULL,
    signed_by            bigint NOT NULL REFERENCES accounts (id),
    signed_at            timestamptz NOT NULL DEFAULT now(),
    qr                   jsonb NOT NULL DEFAULT '{}',
    findings             jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX signed_copies_file_idx ON signed_copies (file_id, signed_at DESC);
CREATE INDEX signed_copies_sha_idx ON signed_copies (sha256);
