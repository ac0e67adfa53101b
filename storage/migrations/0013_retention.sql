-- Keeping records: how long each dossier must be kept (its retention class), legal holds that stop
-- any deletion or purge, undoing a delete, and purges that are proposed, approved by a second
-- administrator and run on demand, never by themselves.
--
-- A class is 'permanent' or a number of years ('10y'), counted from the day the dossier was received.
-- It comes from the catalogue (the longest class of the procedure's result types, in the version in
-- force when the dossier was received), from the unit (the nearest unit up the tree that sets one),
-- or from the dossier itself; the longest applies, so a unit or a dossier can lengthen the class that
-- applies above it, never shorten it.

CREATE FUNCTION retention_years(class text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN class IS NULL THEN NULL WHEN class = 'permanent' THEN 2147483647
                ELSE left(class, -1)::integer END
$$;

CREATE FUNCTION longer_retention(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a
                WHEN retention_years(a) >= retention_years(b) THEN a ELSE b END
$$;

ALTER TABLE units ADD COLUMN retention text CHECK (retention ~ '^(permanent|[1-9][0-9]{0,2}y)$');
ALTER TABLE dossiers ADD COLUMN retention text CHECK (retention ~ '^(permanent|[1-9][0-9]{0,2}y)$');

-- The units a unit's records answer to: itself, its parents, and the units it was merged into.
CREATE FUNCTION units_above(unit bigint) RETURNS TABLE (id bigint, depth integer) LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up(id, depth) AS (
        SELECT unit, 0
        UNION
        SELECT n.id, up.depth + 1 FROM up JOIN units u ON u.id = up.id
        CROSS JOIN LATERAL (VALUES (u.parent_id), (u.successor_id)) n(id)
        WHERE n.id IS NOT NULL AND up.depth < 20
    )
    SELECT id, min(depth) FROM up GROUP BY id
$$;

-- The class from the catalogue and the units above the dossier's (NULL: none set anywhere).
CREATE FUNCTION retention_floor(unit bigint, procedure text, received date) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT longer_retention(
        (SELECT t ->> 'retention' FROM procedure_versions v, jsonb_array_elements(v.result_types) t
         WHERE v.procedure_code = procedure AND v.effective_from <= received AND t ->> 'retention' IS NOT NULL
           AND v.effective_from = (SELECT max(effective_from) FROM procedure_versions
                                   WHERE procedure_code = procedure AND effective_from <= received)
         ORDER BY retention_years(t ->> 'retention') DESC LIMIT 1),
        (SELECT u.retention FROM units_above(unit) a JOIN units u ON u.id = a.id
         WHERE u.retention IS NOT NULL ORDER BY a.depth LIMIT 1))
$$;

CREATE TABLE legal_holds (
    id           uuid PRIMARY KEY,
    dossier_id   uuid REFERENCES dossiers (id),
    unit_id      bigint REFERENCES units (id),
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    placed_by    bigint NOT NULL REFERENCES accounts (id),
    placed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    released_by  bigint REFERENCES accounts (id),
    released_at  timestamptz,
    CHECK ((dossier_id IS NULL) <> (unit_id IS NULL))
);
CREATE UNIQUE INDEX legal_holds_dossier_idx ON legal_holds (dossier_id) WHERE released_at IS NULL;
CREATE UNIQUE INDEX legal_holds_unit_idx ON legal_holds (unit_id) WHERE released_at IS NULL;

CREATE FUNCTION dossier_held(dossier uuid) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM legal_holds WHERE dossier_id = dossier AND released_at IS NULL)
        OR EXISTS (SELECT 1 FROM dossiers d, units_above(d.unit_id) a, legal_holds h
                   WHERE d.id = dossier AND h.unit_id = a.id AND h.released_at IS NULL)
$$;

-- A held dossier, or a file of one, cannot be deleted or purged, whoever asks and however.
CREATE FUNCTION refuse_while_held() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    dossier uuid;
BEGIN
    IF TG_TABLE_NAME = 'dossiers' THEN
        dossier := (to_jsonb(NEW) ->> 'id')::uuid;
    ELSE
        dossier := (to_jsonb(NEW) ->> 'dossier_id')::uuid;
    END IF;
    IF dossier_held(dossier) THEN
        RAISE EXCEPTION 'the dossier is under a legal hold' USING ERRCODE = 'WH001';
    END IF;
    RETURN NEW;
END $$;

ALTER TABLE dossiers DROP CONSTRAINT dossiers_state_check;
ALTER TABLE dossiers ADD CONSTRAINT dossiers_state_check CHECK (state IN ('active', 'deleted', 'purged'));
ALTER TABLE dossiers ADD COLUMN purged_at timestamptz;
ALTER TABLE files DROP CONSTRAINT files_state_check;
ALTER TABLE files ADD CONSTRAINT files_state_check
    CHECK (state IN ('processing', 'ready', 'rejected', 'deleted', 'purged'));
ALTER TABLE blobs ADD COLUMN purged_at timestamptz;  -- its bytes removed by a purge
ALTER TABLE blobs ADD COLUMN locked_until timestamptz;  -- the store's object lock on its bytes, once set
ALTER TABLE files ADD COLUMN deleted_at timestamptz;  -- when it was marked deleted (the undo window)

CREATE TRIGGER dossiers_held BEFORE UPDATE OF state ON dossiers
    FOR EACH ROW WHEN (NEW.state IN ('deleted', 'purged') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION refuse_while_held();
CREATE TRIGGER files_held BEFORE UPDATE OF state ON files
    FOR EACH ROW WHEN (NEW.state IN ('deleted', 'purged') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION refuse_while_held();

-- Undoing a delete brings back the codes the delete withdrew (a code names its result, never another).
CREATE FUNCTION result_codes_reinstate_dossier() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE result_codes SET withdrawn_at = NULL, withdrawn_reason = NULL
    WHERE dossier_id = NEW.id AND withdrawn_reason = 'dossier deleted';
    RETURN NEW;
END $$;
CREATE TRIGGER dossiers_reinstate_result_codes AFTER UPDATE OF state ON dossiers
    FOR EACH ROW WHEN (OLD.state = 'deleted' AND NEW.state = 'active')
    EXECUTE FUNCTION result_codes_reinstate_dossier();

-- Purges: which dossiers, why, who proposed and who approved, and what was removed.
CREATE TABLE purges (
    id           uuid PRIMARY KEY,
    state        text NOT NULL DEFAULT 'proposed' CHECK (state IN ('proposed', 'approved', 'done', 'cancelled')),
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    dossier_ids  uuid[] NOT NULL,
    unit_ids     bigint[] NOT NULL,            -- the dossiers' units (who may see the purge)
    proposed_by  bigint NOT NULL REFERENCES accounts (id),
    proposed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    approved_by  bigint REFERENCES accounts (id),
    approved_at  timestamptz,
    done_by      bigint REFERENCES accounts (id),
    done_at      timestamptz,
    outcome      jsonb,                        -- per dossier: purged, or why not
    CHECK (approved_by IS NULL OR approved_by <> proposed_by)
);
