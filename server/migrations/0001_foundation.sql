-- The region, facilities, units, users, sessions, the audit log and the event log.

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value jsonb NOT NULL
);

CREATE TABLE kecamatan (
    code text PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE kelurahan (
    code      text PRIMARY KEY,
    name      text NOT NULL,
    kecamatan text NOT NULL REFERENCES kecamatan,
    lat       double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon       double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    synthetic_location boolean NOT NULL DEFAULT true
);

CREATE TABLE facilities (
    code        text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('puskesmas', 'hospital', 'command_post')),
    name        text NOT NULL,
    kecamatan   text REFERENCES kecamatan,
    kelurahan   text REFERENCES kelurahan,
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    specialties text[] NOT NULL DEFAULT '{}',
    detail      jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE units (
    id            text PRIMARY KEY,
    callsign      text NOT NULL UNIQUE,
    kind          text NOT NULL,
    capabilities  text[] NOT NULL DEFAULT '{}',
    base_facility text REFERENCES facilities,
    base_lat      double precision NOT NULL CHECK (base_lat BETWEEN -90 AND 90),
    base_lon      double precision NOT NULL CHECK (base_lon BETWEEN -180 AND 180),
    kelurahan     text REFERENCES kelurahan,
    crew          jsonb NOT NULL DEFAULT '[]',
    status        text NOT NULL DEFAULT 'off_duty',
    status_since  timestamptz NOT NULL DEFAULT now(),
    position_lat  double precision CHECK (position_lat BETWEEN -90 AND 90),
    position_lon  double precision CHECK (position_lon BETWEEN -180 AND 180),
    position_at   timestamptz,
    detail        jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    display_name  text NOT NULL DEFAULT '',
    role          text NOT NULL CHECK (role IN ('operator', 'field_team', 'puskesmas', 'specialist', 'admin')),
    unit_id       text REFERENCES units,
    facility_code text REFERENCES facilities,
    specialties   text[] NOT NULL DEFAULT '{}',
    password_hash text NOT NULL,
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- A field team account is bound to exactly one unit, a puskesmas account to one facility.
    CHECK ((role = 'field_team') = (unit_id IS NOT NULL)),
    CHECK ((role = 'puskesmas') = (facility_code IS NOT NULL)),
    CHECK (role <> 'specialist' OR cardinality(specialties) > 0)
);

-- Opaque session tokens; only their SHA-256 is stored.
CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    address    text
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    user_id    bigint REFERENCES users,
    username   text,
    action     text NOT NULL,
    object     text,
    detail     jsonb NOT NULL DEFAULT '{}',
    address    text,
    request_id text
);
CREATE INDEX audit_log_action_object ON audit_log (action, object, at);
CREATE INDEX audit_log_action_address ON audit_log (action, address, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- The durable event log. Ids are handed out under a transaction-scoped
-- advisory lock, so id order is commit order (see server/events.py).
CREATE TABLE events (
    id       bigint PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    type     text NOT NULL,
    audience text[] NOT NULL,
    payload  jsonb NOT NULL
);
