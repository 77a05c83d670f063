-- Events are numbered at commit, not at append. Until now append_event took the numbering lock at
-- the first append and held it through the rest of the transaction (more statements, round trips
-- to the server, the commit): every writer in the system waited for that. Now an append only queues
-- the event; a deferred trigger, which runs as the transaction commits, takes the lock, numbers the
-- transaction's events in order and moves them into `events`. Ids still become visible strictly in
-- order without gaps, and the lock is held only for the commit itself.
CREATE TABLE event_queue (
    seq      bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    type     text NOT NULL,
    audience text[] NOT NULL,
    payload  jsonb NOT NULL
);

DROP FUNCTION append_event(text, text[], jsonb);

CREATE FUNCTION append_event(event_type text, event_audience text[], event_payload jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO event_queue (type, audience, payload) VALUES (event_type, event_audience, event_payload);
$$;

-- Fires once per queued row at commit; the first firing moves all of the transaction's events (the
-- queue never holds a committed row, so it sees only its own), the others find the queue empty.
CREATE FUNCTION number_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(119000003);
    WITH queued AS (DELETE FROM event_queue RETURNING *),
         base AS (SELECT coalesce(max(id), 0) AS id FROM events)
    INSERT INTO events (id, at, type, audience, payload)
        SELECT base.id + row_number() OVER (ORDER BY queued.seq), queued.at, queued.type, queued.audience, queued.payload
        FROM queued, base;
    IF FOUND THEN
        SELECT max(id) INTO last_id FROM events;
        PERFORM pg_notify('psc119_events', last_id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER event_queue_numbered AFTER INSERT ON event_queue
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION number_events();
