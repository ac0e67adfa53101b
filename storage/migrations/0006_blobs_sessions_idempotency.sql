-- Uploads that survive slow links and crashes.
--
-- blobs: identical bytes are stored once, under their SHA-256; a file row points at its blob, and a
-- blob is never removed while a file points at it. Fixity: when each blob was last re-read whole.
-- upload_sessions / upload_parts: resumable uploads, one S3 multipart upload per session.
-- idempotency_keys: the first answer to a POST that carried an Idempotency-Key, to replay it.

CREATE TABLE blobs (
    sha256           text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size             bigint NOT NULL CHECK (size > 0),
    object_key       text NOT NULL UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    verified_at      timestamptz,
    fixity_failed_at timestamptz,
    fixity_detail    text
);
CREATE INDEX blobs_fixity_idx ON blobs (coalesce(verified_at, created_at));

-- Files recorded before this migration keep their own objects; each distinct content becomes a blob.
INSERT INTO blobs (sha256, size, object_key, created_at)
SELECT DISTINCT ON (sha256) sha256, size, object_key, created_at FROM files ORDER BY sha256, created_at;

ALTER TABLE files ADD CONSTRAINT files_blob_fk FOREIGN KEY (sha256) REFERENCES blobs (sha256);
CREATE INDEX files_sha256_idx ON files (sha256);

CREATE TABLE upload_sessions (
    id               uuid PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts (id),
    dossier_id       uuid NOT NULL REFERENCES dossiers (id),
    filename         text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('component', 'result')),
    size             bigint NOT NULL CHECK (size > 0),
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    part_size        bigint NOT NULL CHECK (part_size > 0),
    parts            integer NOT NULL CHECK (parts > 0),
    mode             text NOT NULL DEFAULT 'parts' CHECK (mode IN ('parts', 'direct')),
    object_key       text NOT NULL,
    s3_upload_id     text,
    state            text NOT NULL DEFAULT 'open'
                     CHECK (state IN ('open', 'completed', 'aborted', 'expired', 'failed')),
    file_id          uuid REFERENCES files (id),
    failure          text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at       timestamptz NOT NULL
);
CREATE INDEX upload_sessions_open_idx ON upload_sessions (expires_at) WHERE state = 'open';

CREATE TABLE upload_parts (
    session_id   uuid NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
    n            integer NOT NULL CHECK (n > 0),
    size         bigint NOT NULL,
    sha256       text NOT NULL,
    etag         text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (session_id, n)
);

CREATE TABLE idempotency_keys (
    account_id      bigint NOT NULL REFERENCES accounts (id),
    key             text NOT NULL,
    endpoint        text NOT NULL,
    request_sha256  text NOT NULL,
    status          integer,  -- null while the first request is still being answered
    headers         jsonb,
    body            bytea,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_age_idx ON idempotency_keys (created_at);
