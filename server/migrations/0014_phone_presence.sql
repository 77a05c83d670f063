-- Which field phones are connected, whatever server process holds their socket: one row per socket,
-- its seen_at refreshed by the phone's pings. A socket not heard from for dispatch.phone_offline_s
-- (its process was killed, or its link died without a close) counts as gone.
CREATE TABLE phone_sockets (
    id uuid PRIMARY KEY,
    unit_id text NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    opened_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz
);
CREATE INDEX phone_sockets_unit ON phone_sockets (unit_id, seen_at DESC);
CREATE INDEX phone_sockets_open ON phone_sockets (seen_at) WHERE closed_at IS NULL;
