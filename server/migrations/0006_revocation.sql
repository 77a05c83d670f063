-- Revocation reaches what is already open. A session gets a number that events may name (its token hash
-- stays out of the event log); a room's join grant names the session that asked for it, so the grant dies
-- with that session. Every revocation, whatever makes it (logout, `psc119 user disable`, a change of the
-- user's role, unit, facility or specialties, even by hand in psql), commits a `session.revoked` event,
-- which every server process follows to close that session's sockets (server/revocation.py).

ALTER TABLE sessions ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY UNIQUE;

-- NULL for the server's own recorder, which joins without a session.
ALTER TABLE consult_grants ADD COLUMN session_id bigint REFERENCES sessions (id);

-- The one way an event is appended (server/events.py calls it too): numbered under a transaction-scoped
-- advisory lock so ids become visible in commit order, then NOTIFY'd with the id only.
CREATE FUNCTION append_event(event_type text, event_audience text[], event_payload jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(119000003);
    INSERT INTO events (id, type, audience, payload)
        SELECT coalesce(max(events.id), 0) + 1, event_type, event_audience, event_payload FROM events
        RETURNING events.id INTO new_id;
    PERFORM pg_notify('psc119_events', new_id::text);
    RETURN new_id;
END $$;

-- Audience `server:sessions`: no client holds that tag, so only the server processes read these events.
CREATE FUNCTION session_revoked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM append_event(
        'session.revoked', ARRAY['server:sessions'],
        jsonb_build_object('session', NEW.id, 'user', NEW.user_id, 'expires_at', NEW.expires_at)
    );
    RETURN NULL;
END $$;

CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION session_revoked();

-- A session carries what the user was when it began: disabling the user or changing what they may
-- reach ends every session they have.
CREATE FUNCTION user_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sessions SET revoked_at = now() WHERE user_id = NEW.id AND revoked_at IS NULL AND expires_at > now();
    RETURN NULL;
END $$;

CREATE TRIGGER users_changed AFTER UPDATE OF role, unit_id, facility_code, specialties, disabled_at ON users
    FOR EACH ROW WHEN (
        OLD.role IS DISTINCT FROM NEW.role OR OLD.unit_id IS DISTINCT FROM NEW.unit_id
        OR OLD.facility_code IS DISTINCT FROM NEW.facility_code OR OLD.specialties IS DISTINCT FROM NEW.specialties
        OR (OLD.disabled_at IS NULL AND NEW.disabled_at IS NOT NULL)
    )
    EXECUTE FUNCTION user_changed();
