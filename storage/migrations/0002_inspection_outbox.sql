-- The files table doubles as the inspection outbox: a recorded file waits here until a worker has
-- queued its inspection, so a crash or a Redis outage between the two never loses one.

ALTER TABLE files ADD COLUMN queued_at timestamptz;

CREATE INDEX files_outbox_idx ON files (created_at) WHERE state = 'processing' AND queued_at IS NULL;

CREATE FUNCTION files_notify_recorded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('file_recorded', NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER files_recorded AFTER INSERT ON files
    FOR EACH ROW EXECUTE FUNCTION files_notify_recorded();
