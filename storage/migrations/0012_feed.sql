-- The change feed and its push deliveries.
--
-- changes: one row per change of a dossier, a file or a result code, written by triggers in the
-- transaction that makes the change (a transactional outbox: committed with it, or not at all).
-- Its id is given at insert, not at commit, so a reader following ids would skip a change whose
-- transaction committed after a later id was read. The feed therefore reads `pos`, given by one
-- sequencer at a time (feed_sequence below) to rows already committed, in id order: positions become
-- visible in the order they are given, and a change committed late gets a later position.
-- Two changes of one record are serialized by its row lock, so their ids, and positions, follow
-- the order they were committed in.

CREATE TABLE changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pos        bigint UNIQUE,                  -- the feed position; NULL until sequenced
    kind       text NOT NULL CHECK (kind IN ('dossier.created', 'dossier.changed', 'dossier.deleted',
                                             'dossier.restored', 'dossier.purged',
                                             'file.accepted', 'file.rejected', 'file.deleted',
                                             'result.issued', 'result.withdrawn')),
    record     text NOT NULL,                  -- the dossier's or file's id, or the result code
    dossier_id uuid NOT NULL,
    unit_id    bigint NOT NULL,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    data       jsonb NOT NULL
);
CREATE INDEX changes_unsequenced_idx ON changes (id) WHERE pos IS NULL;

-- The sequencer's counter, and this warehouse's identity (a cursor names the warehouse it is from).
CREATE TABLE feed_head (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    pos       bigint NOT NULL DEFAULT 0,
    instance  uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO feed_head DEFAULT VALUES;

-- Give positions to committed changes that have none, oldest id first; returns how many. Concurrent
-- callers do not wait: the one holding the counter does the work, the others return 0.
CREATE FUNCTION feed_sequence(max_rows integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    head bigint;
    n bigint;
BEGIN
    SELECT pos INTO head FROM feed_head FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    -- this statement's snapshot is taken after the lock: every earlier sequencer's work is visible
    UPDATE changes c SET pos = head + b.rn
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn
          FROM (SELECT id FROM changes WHERE pos IS NULL ORDER BY id LIMIT max_rows) s) b
    WHERE c.id = b.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        UPDATE feed_head SET pos = head + n;
    END IF;
    RETURN n;
END $$;

CREATE FUNCTION feed_dossier() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        k := 'dossier.created';
    ELSIF NEW.state IS DISTINCT FROM OLD.state THEN
        k := CASE NEW.state WHEN 'deleted' THEN 'dossier.deleted' WHEN 'purged' THEN 'dossier.purged'
                            ELSE 'dossier.restored' END;
    ELSIF NEW.state <> 'active' THEN
        RETURN NULL;
    ELSIF (OLD.code, OLD.unit_id, OLD.procedure_code, OLD.title, OLD.subject_name, OLD.subject_id_kind,
           OLD.subject_id_number, OLD.received_on, OLD.result_number, OLD.result_issued_on,
           OLD.result_issuer, OLD.result_valid_until, OLD.result_kind_code, OLD.returned_on,
           OLD.complete_at IS NOT NULL)
          IS NOT DISTINCT FROM
          (NEW.code, NEW.unit_id, NEW.procedure_code, NEW.title, NEW.subject_name, NEW.subject_id_kind,
           NEW.subject_id_number, NEW.received_on, NEW.result_number, NEW.result_issued_on,
           NEW.result_issuer, NEW.result_valid_until, NEW.result_kind_code, NEW.returned_on,
           NEW.complete_at IS NOT NULL) THEN
        RETURN NULL;  -- only the warehouse's own bookkeeping changed (search text, counters)
    ELSE
        k := 'dossier.changed';
    END IF;
    INSERT INTO changes (kind, record, dossier_id, unit_id, data)
    SELECT k, NEW.id::text, NEW.id, NEW.unit_id, jsonb_build_object(
        'id', NEW.id, 'code', NEW.code, 'unit', u.code, 'procedure_code', NEW.procedure_code,
        'title', NEW.title, 'received_on', NEW.received_on, 'returned_on', NEW.returned_on,
        'state', NEW.state, 'complete', NEW.complete_at IS NOT NULL, 'complete_at', NEW.complete_at,
        'result_number', NEW.result_number, 'result_valid_until', NEW.result_valid_until)
    FROM units u WHERE u.id = NEW.unit_id;
    RETURN NULL;
END $$;

CREATE TRIGGER dossiers_feed AFTER INSERT OR UPDATE ON dossiers
    FOR EACH ROW EXECUTE FUNCTION feed_dossier();

CREATE FUNCTION feed_file() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes (kind, record, dossier_id, unit_id, data)
    SELECT CASE NEW.state WHEN 'ready' THEN 'file.accepted' WHEN 'rejected' THEN 'file.rejected'
                          ELSE 'file.deleted' END,
           NEW.id::text, NEW.dossier_id, d.unit_id, jsonb_build_object(
        'id', NEW.id, 'dossier_id', NEW.dossier_id, 'dossier_code', d.code, 'kind', NEW.kind,
        'part_code', NEW.part_code, 'name', NEW.name, 'size', NEW.size, 'sha256', NEW.sha256,
        'pages', NEW.pages, 'state', NEW.state, 'reason_code', NEW.reason_code)
    FROM dossiers d WHERE d.id = NEW.dossier_id;
    RETURN NULL;
END $$;

CREATE TRIGGER files_feed AFTER UPDATE OF state ON files
    FOR EACH ROW WHEN (NEW.state IN ('ready', 'rejected', 'deleted') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION feed_file();

CREATE FUNCTION feed_result() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes (kind, record, dossier_id, unit_id, data)
    SELECT CASE WHEN NEW.withdrawn_at IS NULL THEN 'result.issued' ELSE 'result.withdrawn' END,
           NEW.code, NEW.dossier_id, NEW.unit_id, jsonb_build_object(
        'code', NEW.code, 'file_id', NEW.file_id, 'dossier_id', NEW.dossier_id, 'dossier_code', d.code,
        'procedure_code', d.procedure_code, 'holder_id', NEW.holder, 'holder_name', d.subject_name,
        'issuer_code', u.code, 'issuer_name', u.name, 'result_type', NEW.result_type,
        'document_name', NEW.document_name, 'issued_at', NEW.issued_at, 'valid_until', NEW.valid_until,
        'withdrawn_at', NEW.withdrawn_at, 'withdrawn_reason', NEW.withdrawn_reason, 'sha256', f.sha256)
    FROM dossiers d, units u, files f
    WHERE d.id = NEW.dossier_id AND u.id = NEW.unit_id AND f.id = NEW.file_id;
    RETURN NULL;
END $$;

CREATE TRIGGER result_codes_feed_issued AFTER INSERT ON result_codes
    FOR EACH ROW EXECUTE FUNCTION feed_result();
-- a code withdrawn, or given back (a delete undone): the result as it now stands
CREATE TRIGGER result_codes_feed_withdrawn AFTER UPDATE OF withdrawn_at ON result_codes
    FOR EACH ROW WHEN (OLD.withdrawn_at IS DISTINCT FROM NEW.withdrawn_at)
    EXECUTE FUNCTION feed_result();

-- Push subscriptions: a receiver, the kinds and units it wants, the secret deliveries are signed
-- with, and how far the dispatcher has read the feed for it.
CREATE TABLE subscriptions (
    id               uuid PRIMARY KEY,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    url              text NOT NULL,
    profile          text NOT NULL CHECK (profile IN ('warehouse', 'portal')),
    kinds            text[] NOT NULL,
    unit_ids         bigint[],                 -- roots of the units it covers; NULL: every unit
    secret           text NOT NULL,
    previous_secret  text,                     -- still signs until previous_until (a rotation)
    previous_until   timestamptz,
    state            text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'deleted')),
    paused_reason    text,
    paused_at        timestamptz,
    cursor           bigint NOT NULL,          -- the feed position read up to
    failures         integer NOT NULL DEFAULT 0,  -- the receiver's failures in a row
    retry_at         timestamptz,              -- the receiver is not tried again before this
    last_error       text,
    last_error_at    timestamptz,
    last_status      integer,
    last_delivered_at timestamptz,
    created_by       bigint NOT NULL REFERENCES accounts (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One delivery of one change to one receiver; its id is the webhook-id, the same on every try and
-- replay, so a receiver takes each delivery once.
CREATE TABLE deliveries (
    id               uuid PRIMARY KEY,
    subscription_id  uuid NOT NULL REFERENCES subscriptions (id),
    pos              bigint NOT NULL,
    record           text NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    sending          boolean NOT NULL DEFAULT false,  -- claimed by a sender (until next_at: its lease)
    first_tried_at   timestamptz,
    last_tried_at    timestamptz,
    last_status      integer,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),  -- retried until this is long ago
    UNIQUE (subscription_id, pos)
);
CREATE INDEX deliveries_pending_idx ON deliveries (subscription_id, record, pos) WHERE state = 'pending';
CREATE INDEX deliveries_waiting_idx ON deliveries (subscription_id, pos) WHERE state = 'pending';
CREATE INDEX deliveries_dead_idx ON deliveries (subscription_id, pos) WHERE state = 'dead';
CREATE INDEX deliveries_delivered_idx ON deliveries (delivered_at) WHERE state = 'delivered';
