-- Calls and incidents, unit assignments, the triage table, status history and GPS tracks.

-- The open, editable triage table: call type -> default priority and needed capabilities.
CREATE TABLE triage_types (
    code         text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
    label_id     text NOT NULL,
    label_en     text NOT NULL,
    priority     text NOT NULL CHECK (priority IN ('merah', 'kuning', 'hijau')),
    capabilities text[] NOT NULL DEFAULT '{}',
    active       boolean NOT NULL DEFAULT true,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE incidents (
    id              uuid PRIMARY KEY,
    -- A retried create with the same key returns this incident instead of making a second one.
    idempotency_key text NOT NULL UNIQUE,
    request_digest  text NOT NULL,
    created_by      bigint REFERENCES users,
    received_at     timestamptz NOT NULL DEFAULT now(),
    caller_phone    text NOT NULL,
    caller_name     text,
    -- Location and call type may come after the call is recorded.
    lat             double precision CHECK (lat BETWEEN -90 AND 90),
    lon             double precision CHECK (lon BETWEEN -180 AND 180),
    address         text NOT NULL DEFAULT '',
    kelurahan       text REFERENCES kelurahan,
    kecamatan       text REFERENCES kecamatan,
    call_type       text REFERENCES triage_types,
    complaint       text NOT NULL DEFAULT '',
    priority        text NOT NULL CHECK (priority IN ('merah', 'kuning', 'hijau')),
    notes           text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'open',
    outcome         text,
    duplicate_of    uuid REFERENCES incidents,
    destination     text REFERENCES facilities,
    warnings        jsonb NOT NULL DEFAULT '[]',
    first_dispatched_at   timestamptz,
    first_acknowledged_at timestamptz,
    first_on_scene_at     timestamptz,
    closed_at       timestamptz
);
CREATE INDEX incidents_open ON incidents (received_at) WHERE closed_at IS NULL;
CREATE INDEX incidents_received ON incidents (received_at);
CREATE INDEX incidents_phone ON incidents (caller_phone, received_at);

CREATE TABLE assignments (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     uuid NOT NULL REFERENCES incidents,
    unit_id         text NOT NULL REFERENCES units,
    assigned_by     bigint REFERENCES users,
    assigned_at     timestamptz NOT NULL DEFAULT now(),
    -- Kept in the database so a pending acknowledgement timeout survives a restart.
    ack_deadline    timestamptz NOT NULL,
    acknowledged_at timestamptz,
    on_scene_at     timestamptz,
    transporting_at timestamptz,
    at_hospital_at  timestamptz,
    ended_at        timestamptz,
    end_reason      text
);
-- A unit is on at most one active assignment: the database enforces it, whatever the race.
CREATE UNIQUE INDEX assignments_one_active_per_unit ON assignments (unit_id) WHERE ended_at IS NULL;
CREATE INDEX assignments_incident ON assignments (incident_id);
CREATE INDEX assignments_ack_due ON assignments (ack_deadline) WHERE acknowledged_at IS NULL AND ended_at IS NULL;

CREATE TABLE unit_status_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unit_id     text NOT NULL REFERENCES units,
    status      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    by_user     bigint REFERENCES users,
    incident_id uuid REFERENCES incidents,
    reason      text
);
CREATE INDEX unit_status_log_unit ON unit_status_log (unit_id, at);

-- A sampled track of GPS fixes for the record; the latest fix lives on the unit row.
CREATE TABLE unit_track (
    unit_id  text NOT NULL REFERENCES units,
    at       timestamptz NOT NULL,
    lat      double precision NOT NULL,
    lon      double precision NOT NULL,
    accuracy real,
    PRIMARY KEY (unit_id, at)
);

-- The incident timeline is its events.
CREATE INDEX events_incident ON events ((payload->>'incident_id'), id) WHERE payload ? 'incident_id';
