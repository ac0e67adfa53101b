-- Core tables: the unit tree, accounts, dossiers and their files.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE units (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code         text NOT NULL UNIQUE CHECK (code ~ '^[0-9A-Z.]{1,35}$'),
    name         text NOT NULL,
    level        text NOT NULL CHECK (level IN ('province', 'department', 'district', 'commune')),
    parent_id    bigint REFERENCES units (id),
    placeholder  boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((level = 'province') = (parent_id IS NULL))
);
CREATE INDEX units_parent_idx ON units (parent_id);

CREATE TABLE accounts (
    id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login                     text NOT NULL UNIQUE CHECK (login ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    unit_id                   bigint NOT NULL REFERENCES units (id),
    role                      text NOT NULL
                              CHECK (role IN ('province_admin', 'unit_admin', 'operator', 'viewer')),
    password_hash             text NOT NULL,
    password_change_required  boolean NOT NULL DEFAULT false,
    state                     text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_unit_idx ON accounts (unit_id);

-- Dossier codes are <unit code>-YYMMDD-XXXX: one counter per unit and day.
CREATE TABLE dossier_code_counters (
    unit_id  bigint NOT NULL REFERENCES units (id),
    day      date NOT NULL,
    last     integer NOT NULL,
    PRIMARY KEY (unit_id, day)
);

CREATE TABLE dossiers (
    id                  uuid PRIMARY KEY,
    code                text NOT NULL UNIQUE,
    unit_id             bigint NOT NULL REFERENCES units (id),
    procedure_code      text NOT NULL,
    title               text,
    subject_name        text NOT NULL,
    subject_id_kind     text NOT NULL,
    subject_id_number   text NOT NULL,
    received_on         date NOT NULL,
    result_number       text,
    result_issued_on    date,
    result_issuer       text,
    result_valid_until  date,
    result_kind_code    text,
    state               text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleted')),
    created_by          bigint NOT NULL REFERENCES accounts (id),
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    deleted_at          timestamptz,
    -- Lower-cased, diacritics folded: codes, names and title, for search without diacritics.
    search_text         text NOT NULL DEFAULT ''
);
CREATE INDEX dossiers_unit_created_idx ON dossiers (unit_id, created_at DESC, id DESC);
CREATE INDEX dossiers_created_idx ON dossiers (created_at DESC, id DESC);
CREATE INDEX dossiers_subject_idx ON dossiers (subject_id_number);
CREATE INDEX dossiers_procedure_idx ON dossiers (procedure_code);
CREATE INDEX dossiers_search_trgm_idx ON dossiers USING gin (search_text gin_trgm_ops);

CREATE TABLE files (
    id               uuid PRIMARY KEY,
    dossier_id       uuid NOT NULL REFERENCES dossiers (id),
    kind             text NOT NULL CHECK (kind IN ('component', 'result')),
    name             text NOT NULL,
    size             bigint NOT NULL CHECK (size > 0),
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    media_type       text NOT NULL,
    object_key       text NOT NULL,
    state            text NOT NULL DEFAULT 'processing'
                     CHECK (state IN ('processing', 'ready', 'rejected', 'deleted')),
    reason_code      text,
    reason           text,
    pages            integer,
    inspection       jsonb NOT NULL DEFAULT '{}'::jsonb,
    text_content     text,
    search_text      text NOT NULL DEFAULT '',
    idempotency_key  text,
    created_by       bigint NOT NULL REFERENCES accounts (id),
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    inspected_at     timestamptz
);
CREATE INDEX files_dossier_idx ON files (dossier_id, created_at);
CREATE INDEX files_processing_idx ON files (updated_at) WHERE state = 'processing';
CREATE UNIQUE INDEX files_idempotency_idx ON files (created_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX files_search_trgm_idx ON files USING gin (search_text gin_trgm_ops);
