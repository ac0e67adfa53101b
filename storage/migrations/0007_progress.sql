-- Progress against the province's targets (Appendix I of the 2023 report), kept up to date as records
-- change so the report reads a few rows per unit however large the warehouse grows.
--
-- A dossier counts as digitized from the moment its first file passes inspection (digitized_at);
-- unit_progress holds, per unit, year received and week digitized, how many such dossiers there are.

ALTER TABLE dossiers ADD COLUMN digitized_at timestamptz;

UPDATE dossiers d SET digitized_at = f.first_ready
FROM (SELECT dossier_id, min(coalesce(inspected_at, created_at)) AS first_ready
      FROM files WHERE state = 'ready' GROUP BY dossier_id) f
WHERE f.dossier_id = d.id;

CREATE TABLE unit_targets (
    unit_id         bigint NOT NULL REFERENCES units (id),
    year            integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    declared_total  integer NOT NULL CHECK (declared_total >= 0),
    target_rate     numeric(5, 4) CHECK (target_rate BETWEEN 0 AND 1),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (unit_id, year)
);

CREATE TABLE unit_progress (
    unit_id    bigint NOT NULL REFERENCES units (id),
    year       integer NOT NULL,
    week       date NOT NULL,  -- Monday of the ISO week the dossiers were digitized in
    digitized  integer NOT NULL,
    PRIMARY KEY (unit_id, year, week)
);

CREATE FUNCTION progress_add(p_unit bigint, p_received date, p_at timestamptz, p_delta integer)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO unit_progress (unit_id, year, week, digitized)
    VALUES (p_unit, extract(year FROM p_received)::int, date_trunc('week', p_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date,
            p_delta)
    ON CONFLICT (unit_id, year, week) DO UPDATE SET digitized = unit_progress.digitized + excluded.digitized;
$$;

CREATE FUNCTION dossiers_progress() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.digitized_at IS NOT NULL AND OLD.state = 'active' THEN
        PERFORM progress_add(OLD.unit_id, OLD.received_on, OLD.digitized_at, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.digitized_at IS NOT NULL AND NEW.state = 'active' THEN
        PERFORM progress_add(NEW.unit_id, NEW.received_on, NEW.digitized_at, 1);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER dossiers_progress_insert AFTER INSERT ON dossiers
    FOR EACH ROW WHEN (NEW.digitized_at IS NOT NULL) EXECUTE FUNCTION dossiers_progress();
CREATE TRIGGER dossiers_progress_update AFTER UPDATE OF digitized_at, state, unit_id, received_on ON dossiers
    FOR EACH ROW EXECUTE FUNCTION dossiers_progress();

-- The first file of a dossier that passes inspection makes the dossier digitized.
CREATE FUNCTION files_mark_digitized() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dossiers SET digitized_at = clock_timestamp() WHERE id = NEW.dossier_id AND digitized_at IS NULL;
    RETURN NULL;
END;
$$;

CREATE TRIGGER files_ready_digitizes AFTER UPDATE OF state ON files
    FOR EACH ROW WHEN (NEW.state = 'ready' AND OLD.state IS DISTINCT FROM 'ready')
    EXECUTE FUNCTION files_mark_digitized();

-- Recount from the dossiers (after a bulk load with the triggers off, or to check the counters).
CREATE FUNCTION progress_rebuild() RETURNS void LANGUAGE sql AS $$
    DELETE FROM unit_progress;
    INSERT INTO unit_progress (unit_id, year, week, digitized)
    SELECT unit_id, extract(year FROM received_on)::int,
           date_trunc('week', digitized_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, count(*)
    FROM dossiers WHERE digitized_at IS NOT NULL AND state = 'active'
    GROUP BY 1, 2, 3;
$$;

SELECT progress_rebuild();
