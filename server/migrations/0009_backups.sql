-- One row per backup run, scheduled or from `psc119 backup`. A run is claimed by inserting its row
-- (started_at), and finished by setting finished_at, ok, and file and bytes or error. The last good
-- backup is: SELECT finished_at, file, bytes FROM backup_runs WHERE ok ORDER BY finished_at DESC LIMIT 1.
-- A row with finished_at NULL is running, or its process died.
CREATE TABLE backup_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    ok          boolean,
    scheduled   boolean NOT NULL,
    file        text,
    bytes       bigint,
    error       text
);
CREATE INDEX backup_runs_ok ON backup_runs (finished_at DESC) WHERE ok;
