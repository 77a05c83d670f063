-- Which server process holds each consult's video room, so that several processes behave as one:
-- a process that is not the owner relays the websocket to the owner (server/room_relay.py).

-- A live server process; it beats every node_ttl_s / 4 and is taken for dead after node_ttl_s.
CREATE TABLE nodes (
    id         uuid PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);

-- One owner per room; a dead owner's rooms are claimed by the next process a member reaches.
CREATE TABLE room_owners (
    consult_id uuid PRIMARY KEY REFERENCES consults ON DELETE CASCADE,
    node       uuid NOT NULL REFERENCES nodes ON DELETE CASCADE,
    -- How the other processes reach the owner's websocket endpoint.
    url        text NOT NULL,
    since      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX room_owners_node ON room_owners (node);
