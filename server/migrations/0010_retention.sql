-- Retention (server/retention.py): after their configured time, personal data is deleted or pseudonymised
-- by a daily sweep. These columns say what the sweep already did, so a second run changes nothing and a
-- download of a deleted file can answer 410 Gone rather than fail.
ALTER TABLE incidents ADD COLUMN pseudonymised_at timestamptz;
ALTER TABLE consults ADD COLUMN pseudonymised_at timestamptz;
ALTER TABLE consult_attachments ADD COLUMN deleted_at timestamptz;
ALTER TABLE consult_recordings ADD COLUMN deleted_at timestamptz;
CREATE INDEX incidents_closed_personal ON incidents (closed_at) WHERE closed_at IS NOT NULL AND pseudonymised_at IS NULL;
CREATE INDEX consults_ended_personal ON consults (ended_at) WHERE ended_at IS NOT NULL AND pseudonymised_at IS NULL;
CREATE INDEX unit_track_at ON unit_track (at);
CREATE INDEX audit_log_at ON audit_log (at);

-- One row per sweep: when it ran, the instant it took for "now", and how many rows of each class it changed.
CREATE TABLE retention_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    as_of       timestamptz NOT NULL,
    counts      jsonb NOT NULL
);

-- The audit log stays append-only, except that the retention sweep may delete entries past their time:
-- it says so with SET LOCAL psc119.retention = 'on' inside its own transaction. UPDATE and TRUNCATE stay refused.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('psc119.retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
