-- Telemedicine consults: requests, the on-call roster, join grants, recording consent,
-- chat, attachments and recordings.

CREATE TABLE consults (
    id              uuid PRIMARY KEY,
    -- A retried create with the same key returns this consult instead of making a second one.
    idempotency_key text NOT NULL UNIQUE,
    request_digest  text NOT NULL,
    requester       bigint NOT NULL REFERENCES users,
    facility_code   text NOT NULL REFERENCES facilities,
    specialty       text NOT NULL,
    service         text NOT NULL CHECK (service IN ('teleconsultation', 'tele_radiology', 'tele_ekg', 'tele_usg')),
    urgency         text NOT NULL CHECK (urgency IN ('emergency', 'urgent', 'routine')),
    -- Clinical summary only: no name, NIK or phone number (see signaling/patient.py).
    patient         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'requested'
                    CHECK (state IN ('requested', 'accepted', 'in_session', 'completed', 'cancelled', 'expired')),
    specialist      bigint REFERENCES users,
    requested_at    timestamptz NOT NULL,
    respond_by      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    accepted_at     timestamptz,
    started_at      timestamptz,
    ended_at        timestamptz,
    escalated_at    timestamptz,
    outcome         jsonb,
    cancelled_by    bigint REFERENCES users,
    cancel_reason   text,
    CHECK (requested_at <= respond_by AND respond_by <= expires_at),
    CHECK ((specialist IS NULL) = (accepted_at IS NULL))
);
CREATE INDEX consults_waiting ON consults (specialty, respond_by) WHERE state = 'requested';
CREATE INDEX consults_facility ON consults (facility_code, requested_at);
CREATE INDEX consults_specialist ON consults (specialist, requested_at) WHERE specialist IS NOT NULL;

-- Who is on call for which specialty right now.
CREATE TABLE oncall (
    user_id   bigint NOT NULL REFERENCES users,
    specialty text NOT NULL,
    since     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, specialty)
);

-- A specialist who declined a request; the request stays in the queue for the others.
CREATE TABLE consult_declines (
    consult_id uuid NOT NULL REFERENCES consults,
    user_id    bigint NOT NULL REFERENCES users,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consult_id, user_id)
);

-- Join tokens of a consult's room: only the SHA-256 of a token is stored. ``member`` is
-- the room's member id: a user id in decimal, or 'recorder' for the server's recorder.
-- A new token for the same member replaces the older one.
CREATE TABLE consult_grants (
    consult_id uuid NOT NULL REFERENCES consults,
    member     text NOT NULL,
    digest     bytea NOT NULL UNIQUE CHECK (length(digest) = 32),
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (consult_id, member)
);

-- Each doctor's latest consent to recording the session.
CREATE TABLE consult_consents (
    consult_id uuid NOT NULL REFERENCES consults,
    user_id    bigint NOT NULL REFERENCES users,
    consent    boolean NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consult_id, user_id)
);

CREATE TABLE consult_chat (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consult_id uuid NOT NULL REFERENCES consults,
    from_user  bigint NOT NULL REFERENCES users,
    text       text NOT NULL,
    at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX consult_chat_consult ON consult_chat (consult_id, id);

-- Files are stored under <server.var_dir>/attachments/, never under the web root.
CREATE TABLE consult_attachments (
    id           uuid PRIMARY KEY,
    consult_id   uuid NOT NULL REFERENCES consults,
    uploaded_by  bigint NOT NULL REFERENCES users,
    filename     text NOT NULL,
    content_type text NOT NULL,
    size         bigint NOT NULL CHECK (size > 0),
    sha256       text NOT NULL,
    stored_path  text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consult_attachments_consult ON consult_attachments (consult_id, at);

CREATE TABLE consult_recordings (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consult_id uuid NOT NULL REFERENCES consults,
    path       text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    bytes      bigint
);
CREATE INDEX consult_recordings_consult ON consult_recordings (consult_id);
