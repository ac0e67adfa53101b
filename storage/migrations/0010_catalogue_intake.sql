-- The procedure catalogue, what each file digitizes, complete dossiers, and returns from the one-stop
-- system with the results each unit still owes.
--
-- procedure_versions: a procedure (mã TTHC) as it stood from effective_from: its components (which must
-- be digitized) and its result types. A dossier is judged against the version in force on the day it
-- was received.
--
-- A dossier is complete when a file of it passed inspection (digitized_at) and every part its version
-- requires is present: each component marked required and, when the dossier has a result with a result
-- type, that result type. A dossier whose procedure is not in the catalogue requires nothing more than
-- one accepted file (what "digitized" meant before the catalogue). The columns below are kept by
-- triggers, so a list filter or the progress report reads them instead of joining files.
--
-- A dossier returned by the one-stop system (returned_on set) with a result whose file has not yet
-- passed inspection is owed (owed_since): it is on its unit's work list until the result arrives.

CREATE TABLE procedures (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]\.[0-9]{6}(\.[0-9A-Z]+)*$'),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE procedure_versions (
    procedure_code  text NOT NULL REFERENCES procedures (code),
    effective_from  date NOT NULL,
    name            text NOT NULL,
    field           text,
    levels          text[] NOT NULL DEFAULT '{}',
    components      jsonb NOT NULL DEFAULT '[]'::jsonb,   -- [{code, name, required}]
    result_types    jsonb NOT NULL DEFAULT '[]'::jsonb,   -- [{code, name, validity, months, until}]
    required_parts  text[] NOT NULL DEFAULT '{}',         -- the codes of the required components
    recorded_by     bigint REFERENCES accounts (id),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (procedure_code, effective_from)
);

ALTER TABLE files ADD COLUMN part_code text;
ALTER TABLE upload_sessions ADD COLUMN part_code text;

ALTER TABLE dossiers
    ADD COLUMN catalogued boolean NOT NULL DEFAULT false,
    ADD COLUMN parts_required text[] NOT NULL DEFAULT '{}',
    ADD COLUMN parts_present text[] NOT NULL DEFAULT '{}',   -- part codes of its accepted files
    ADD COLUMN result_ready boolean NOT NULL DEFAULT false,   -- a result file passed inspection
    ADD COLUMN complete_at timestamptz,
    ADD COLUMN source_account_id bigint REFERENCES accounts (id),  -- the one-stop system that pushed it
    ADD COLUMN returned_on date,
    ADD COLUMN owed_since timestamptz;

CREATE INDEX dossiers_owed_idx ON dossiers (unit_id, returned_on, id) WHERE owed_since IS NOT NULL AND state = 'active';
CREATE INDEX dossiers_owed_all_idx ON dossiers (returned_on, id) WHERE owed_since IS NOT NULL AND state = 'active';

-- What a dossier requires, whether it is complete, whether its result is owed.
CREATE FUNCTION dossiers_completeness() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    version_parts text[];
    present text[];
BEGIN
    SELECT v.required_parts INTO version_parts FROM procedure_versions v
    WHERE v.procedure_code = NEW.procedure_code AND v.effective_from <= NEW.received_on
    ORDER BY v.effective_from DESC LIMIT 1;
    NEW.catalogued := FOUND;
    NEW.parts_required := coalesce(version_parts, '{}');
    IF NEW.catalogued AND NEW.result_number IS NOT NULL AND NEW.result_kind_code IS NOT NULL THEN
        NEW.parts_required := NEW.parts_required || NEW.result_kind_code;
    END IF;
    present := NEW.parts_present;
    IF NEW.result_ready AND NEW.result_kind_code IS NOT NULL THEN
        present := present || NEW.result_kind_code;  -- a result file without a part code is the dossier's result
    END IF;
    IF NEW.digitized_at IS NOT NULL AND NEW.parts_required <@ present THEN
        NEW.complete_at := coalesce(NEW.complete_at, clock_timestamp());
    ELSE
        NEW.complete_at := NULL;
    END IF;
    IF NEW.returned_on IS NOT NULL AND NEW.result_number IS NOT NULL AND NOT NEW.result_ready THEN
        NEW.owed_since := coalesce(NEW.owed_since, clock_timestamp());
    ELSE
        NEW.owed_since := NULL;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER dossiers_completeness BEFORE INSERT OR UPDATE OF procedure_code, received_on, result_number,
    result_kind_code, returned_on, parts_present, result_ready, digitized_at, complete_at, owed_since ON dossiers
    FOR EACH ROW EXECUTE FUNCTION dossiers_completeness();

-- A file entering or leaving the accepted state updates its dossier's parts.
DROP TRIGGER files_ready_digitizes ON files;
DROP FUNCTION files_mark_digitized();

-- Two files of one dossier accepted at once (a worker judges several at a time): each transaction locks
-- the dossier first, and only then reads its accepted files, in a statement of its own whose snapshot
-- already sees what the other committed; reading them in the UPDATE itself would miss it.
CREATE FUNCTION files_dossier_parts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parts text[];
    n integer;
    result boolean;
BEGIN
    PERFORM 1 FROM dossiers WHERE id = NEW.dossier_id FOR UPDATE;
    SELECT coalesce(array_agg(DISTINCT f.part_code ORDER BY f.part_code) FILTER (WHERE f.part_code IS NOT NULL), '{}'),
           count(*)::int, coalesce(bool_or(f.kind = 'result'), false)
    INTO parts, n, result
    FROM files f WHERE f.dossier_id = NEW.dossier_id AND f.state = 'ready';
    UPDATE dossiers d
    SET parts_present = parts, result_ready = result,
        digitized_at = CASE WHEN n > 0 THEN coalesce(d.digitized_at, clock_timestamp()) ELSE d.digitized_at END
    WHERE d.id = NEW.dossier_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER files_dossier_parts AFTER UPDATE OF state, part_code ON files
    FOR EACH ROW WHEN ((OLD.state = 'ready') IS DISTINCT FROM (NEW.state = 'ready')
                       OR (NEW.state = 'ready' AND OLD.part_code IS DISTINCT FROM NEW.part_code))
    EXECUTE FUNCTION files_dossier_parts();

-- Counters per unit: started (the first accepted file, as before) and complete per year received and
-- week; owed per year received.
ALTER TABLE unit_progress ADD COLUMN complete integer NOT NULL DEFAULT 0;

CREATE TABLE unit_owed (
    unit_id  bigint NOT NULL REFERENCES units (id),
    year     integer NOT NULL,
    owed     integer NOT NULL,
    PRIMARY KEY (unit_id, year)
);

CREATE FUNCTION progress_count(p_unit bigint, p_received date, p_at timestamptz, p_started integer,
                               p_complete integer)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO unit_progress (unit_id, year, week, digitized, complete)
    VALUES (p_unit, extract(year FROM p_received)::int,
            date_trunc('week', p_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, p_started, p_complete)
    ON CONFLICT (unit_id, year, week) DO UPDATE
    SET digitized = unit_progress.digitized + excluded.digitized,
        complete = unit_progress.complete + excluded.complete;
$$;

CREATE FUNCTION owed_count(p_unit bigint, p_received date, p_delta integer) RETURNS void LANGUAGE sql AS $$
    INSERT INTO unit_owed (unit_id, year, owed) VALUES (p_unit, extract(year FROM p_received)::int, p_delta)
    ON CONFLICT (unit_id, year) DO UPDATE SET owed = unit_owed.owed + excluded.owed;
$$;

DROP TRIGGER dossiers_progress_insert ON dossiers;
DROP TRIGGER dossiers_progress_update ON dossiers;
DROP FUNCTION dossiers_progress();
DROP FUNCTION progress_add(bigint, date, timestamptz, integer);

CREATE FUNCTION dossiers_progress() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.state = 'active' THEN
        IF OLD.digitized_at IS NOT NULL THEN
            PERFORM progress_count(OLD.unit_id, OLD.received_on, OLD.digitized_at, -1, 0);
        END IF;
        IF OLD.complete_at IS NOT NULL THEN
            PERFORM progress_count(OLD.unit_id, OLD.received_on, OLD.complete_at, 0, -1);
        END IF;
        IF OLD.owed_since IS NOT NULL THEN
            PERFORM owed_count(OLD.unit_id, OLD.received_on, -1);
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.state = 'active' THEN
        IF NEW.digitized_at IS NOT NULL THEN
            PERFORM progress_count(NEW.unit_id, NEW.received_on, NEW.digitized_at, 1, 0);
        END IF;
        IF NEW.complete_at IS NOT NULL THEN
            PERFORM progress_count(NEW.unit_id, NEW.received_on, NEW.complete_at, 0, 1);
        END IF;
        IF NEW.owed_since IS NOT NULL THEN
            PERFORM owed_count(NEW.unit_id, NEW.received_on, 1);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

-- Whatever set them (a statement or the trigger above): compare the row before and after.
CREATE TRIGGER dossiers_progress_insert AFTER INSERT ON dossiers
    FOR EACH ROW WHEN (NEW.digitized_at IS NOT NULL OR NEW.complete_at IS NOT NULL OR NEW.owed_since IS NOT NULL)
    EXECUTE FUNCTION dossiers_progress();
CREATE TRIGGER dossiers_progress_update AFTER UPDATE ON dossiers
    FOR EACH ROW WHEN (OLD.digitized_at IS DISTINCT FROM NEW.digitized_at
                       OR OLD.complete_at IS DISTINCT FROM NEW.complete_at
                       OR OLD.owed_since IS DISTINCT FROM NEW.owed_since
                       OR OLD.state IS DISTINCT FROM NEW.state
                       OR OLD.unit_id IS DISTINCT FROM NEW.unit_id
                       OR OLD.received_on IS DISTINCT FROM NEW.received_on)
    EXECUTE FUNCTION dossiers_progress();

CREATE OR REPLACE FUNCTION progress_rebuild() RETURNS void LANGUAGE sql AS $$
    DELETE FROM unit_progress;
    INSERT INTO unit_progress (unit_id, year, week, digitized, complete)
    SELECT unit_id, year, week, sum(started)::int, sum(complete)::int FROM (
        SELECT unit_id, extract(year FROM received_on)::int AS year,
               date_trunc('week', digitized_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS week,
               1 AS started, 0 AS complete
        FROM dossiers WHERE digitized_at IS NOT NULL AND state = 'active'
        UNION ALL
        SELECT unit_id, extract(year FROM received_on)::int,
               date_trunc('week', complete_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, 0, 1
        FROM dossiers WHERE complete_at IS NOT NULL AND state = 'active'
    ) c GROUP BY 1, 2, 3;
    DELETE FROM unit_owed;
    INSERT INTO unit_owed (unit_id, year, owed)
    SELECT unit_id, extract(year FROM received_on)::int, count(*)
    FROM dossiers WHERE owed_since IS NOT NULL AND state = 'active' GROUP BY 1, 2;
$$;

-- Dossiers recorded before the catalogue: no procedure is catalogued yet and no file names its part, so
-- a dossier with an accepted file is complete, since the day it became digitized. One pass, with the
-- triggers that would compute the same thing row by row off (only the owner runs migrations).
ALTER TABLE dossiers DISABLE TRIGGER dossiers_progress_update;
ALTER TABLE dossiers DISABLE TRIGGER dossiers_completeness;
UPDATE dossiers d
SET complete_at = d.digitized_at,
    result_ready = EXISTS (SELECT 1 FROM files f WHERE f.dossier_id = d.id AND f.state = 'ready' AND f.kind = 'result')
WHERE d.digitized_at IS NOT NULL;
ALTER TABLE dossiers ENABLE TRIGGER dossiers_completeness;
ALTER TABLE dossiers ENABLE TRIGGER dossiers_progress_update;
SELECT progress_rebuild();

-- Returns pushed by a one-stop system's account: its role, and keys bound to the units it serves.
ALTER TABLE accounts DROP CONSTRAINT accounts_role_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_role_check
    CHECK (role IN ('province_admin', 'unit_admin', 'operator', 'viewer', 'one_stop'));
ALTER TABLE api_keys ADD COLUMN unit_ids bigint[];
