-- Events are numbered from a sequence as their transaction commits, without a lock held through the
-- commit. Until now the numbering trigger took an advisory lock and NOTIFY'd, and both are held until the
-- commit's WAL flush ends (NOTIFY takes PostgreSQL's one notification lock at commit): every
-- event-writing transaction in the system waited for the one before it to reach the disk.
--
-- Ids are now unique and rising but may become visible out of order (a transaction numbered 10 can
-- finish its commit after one numbered 11), and a commit that fails after numbering leaves a hole.
-- A reader therefore never reads past an id that may still commit. `nextval` takes a RowExclusiveLock
-- on the sequence and keeps it until its transaction ends, before it hands out the value, and that lock
-- is released only once the commit is visible: so when an id is missing below a visible one, the
-- transactions that hold the sequence now (`event_numberers`) include the one that holds the missing
-- id, and once they have all ended the id is visible to a new snapshot or never will be.
-- `settled_event_id` waits for that; the event bus does it without waiting (server/bus.py).
--
-- The NOTIFY that wakes the buses is sent after the commit by the server's connections
-- (server/announcing.py); an event appended by SQL alone (a revocation by hand in psql) is still
-- NOTIFY'd by the trigger, within its transaction.
CREATE SEQUENCE events_id_seq OWNED BY events.id;
SELECT setval('events_id_seq', coalesce(max(id), 0) + 1, false) FROM events;

ALTER TABLE event_queue ADD COLUMN announced boolean NOT NULL DEFAULT false;

DROP FUNCTION append_event(text, text[], jsonb);

-- announced: the caller NOTIFYs after its commit, so the commit need not (server/events.py).
CREATE FUNCTION append_event(event_type text, event_audience text[], event_payload jsonb, announced boolean DEFAULT false)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO event_queue (type, audience, payload, announced) VALUES (event_type, event_audience, event_payload, announced);
$$;

-- Fires once per queued row at commit; the first firing numbers all of the transaction's events in the
-- order they were appended (the queue never holds a committed row, so it sees only its own).
CREATE OR REPLACE FUNCTION number_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    unannounced boolean;
BEGIN
    WITH queued AS (DELETE FROM event_queue RETURNING *),
         numbered AS (
             INSERT INTO events (id, at, type, audience, payload)
                 SELECT nextval('events_id_seq'), clock_timestamp(), type, audience, payload
                 FROM (SELECT * FROM queued ORDER BY seq) AS ordered
                 RETURNING 1)
    SELECT bool_or(NOT announced) INTO unannounced FROM queued;
    IF unannounced THEN
        PERFORM pg_notify('psc119_events', currval('events_id_seq')::text);
    END IF;
    RETURN NULL;
END $$;

-- The transactions (virtual ids) that hold event ids they may still commit, other than the caller's.
CREATE FUNCTION event_numberers() RETURNS text[]
LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(array_agg(virtualtransaction), '{}') FROM pg_locks
    WHERE locktype = 'relation' AND relation = 'events_id_seq'::regclass AND mode = 'RowExclusiveLock'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND pid IS DISTINCT FROM pg_backend_pid();
$$;

-- The newest id at or below which every event is settled: a statement that starts after this returns
-- sees each such event or it never existed. Waits only for transactions that are committing now.
CREATE FUNCTION settled_event_id() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    issued bigint;
    numbering text[];
BEGIN
    -- The sequence first: every id handed out by now belongs to a transaction that has ended or is listed next.
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO issued FROM events_id_seq;
    numbering := event_numberers();
    WHILE numbering <> '{}' LOOP
        PERFORM pg_sleep(0.001);
        numbering := ARRAY(SELECT unnest(numbering) INTERSECT SELECT unnest(event_numberers()));
    END LOOP;
    RETURN issued;
END $$;
