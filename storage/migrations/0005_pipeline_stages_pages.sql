-- The inspection pipeline made visible: a stage per file with the time it entered each one, attempts
-- and the last transient error; text kept per page (from the text layer or from OCR); the OCR'd copy
-- kept beside the original; an OCR outbox beside the inspection one.

ALTER TABLE files
    ADD COLUMN stage text NOT NULL DEFAULT 'queued'
        CHECK (stage IN ('queued', 'inspecting', 'ocr', 'ready', 'rejected', 'failed')),
    ADD COLUMN stage_times jsonb NOT NULL DEFAULT jsonb_build_object('queued', clock_timestamp()),
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN last_error text,
    ADD COLUMN ocr_queued_at timestamptz,
    ADD COLUMN ocr_object_key text;

UPDATE files SET stage = CASE state WHEN 'ready' THEN 'ready' WHEN 'rejected' THEN 'rejected' ELSE 'queued' END,
                 stage_times = jsonb_build_object('queued', created_at);

CREATE INDEX files_ocr_outbox_idx ON files (updated_at) WHERE stage = 'ocr' AND ocr_queued_at IS NULL;
CREATE INDEX files_failed_idx ON files (updated_at DESC, id) WHERE stage = 'failed';
CREATE INDEX files_in_pipeline_idx ON files (stage) WHERE stage NOT IN ('ready', 'rejected');

CREATE TABLE file_pages (
    file_id  uuid NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    page     integer NOT NULL CHECK (page > 0),
    source   text NOT NULL CHECK (source IN ('layer', 'ocr')),
    text     text NOT NULL,
    PRIMARY KEY (file_id, page)
);

-- A file handed on to OCR, or sent back for inspection by an admin, wakes the drainer as a newly
-- recorded one does.
CREATE FUNCTION files_notify_stage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('file_recorded', NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER files_stage_queued AFTER UPDATE OF stage ON files
    FOR EACH ROW WHEN (NEW.stage IN ('queued', 'ocr') AND OLD.stage IS DISTINCT FROM NEW.stage)
    EXECUTE FUNCTION files_notify_stage();
