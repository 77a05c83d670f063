-- Each queued event is numbered by its own firing of the trigger, found by its key. Until now the first
-- firing emptied the whole queue (`DELETE FROM event_queue`), a scan of every row version the table held:
-- other transactions' uncommitted rows and the dead ones a busy queue keeps until it is vacuumed. Under a
-- dispatch load that was the most expensive statement PostgreSQL ran (0.37 ms a firing, every later firing
-- of a transaction scanning again for nothing). Deferred triggers fire in the order their rows were queued,
-- so a transaction's events are still numbered in the order it appended them.
--
-- The queue never holds a committed row, so it need not be written to the WAL nor survive a crash: unlogged,
-- an event's payload is written to the WAL once (in `events`), not twice.
ALTER TABLE event_queue SET UNLOGGED;

CREATE OR REPLACE FUNCTION number_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_queue WHERE seq = NEW.seq;
    INSERT INTO events (id, at, type, audience, payload)
        VALUES (nextval('events_id_seq'), clock_timestamp(), NEW.type, NEW.audience, NEW.payload);
    IF NOT NEW.announced THEN
        PERFORM pg_notify('psc119_events', currval('events_id_seq')::text);
    END IF;
    RETURN NULL;
END $$;
