-- A specialist's referral from a consult to a hospital (SISRUTE-shaped). What the specialist asked (hospital,
-- ICD-10 diagnosis, reason, urgency, service, transport) is the consult's outcome; this row is the request as the
-- hospital sees it: whom it is addressed to, its answer, and the inter-facility transfer incident it became.
CREATE TABLE referrals (
    id             uuid PRIMARY KEY,
    consult_id     uuid NOT NULL UNIQUE REFERENCES consults,
    hospital       text NOT NULL REFERENCES facilities,
    state          text NOT NULL DEFAULT 'requested' CHECK (state IN ('requested', 'accepted', 'declined')),
    requested_by   bigint NOT NULL REFERENCES users,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    answered_by    bigint REFERENCES users,
    answered_at    timestamptz,
    decline_reason text,
    incident_id    uuid UNIQUE REFERENCES incidents,
    CHECK ((state = 'requested') = (answered_at IS NULL)),
    CHECK ((state = 'declined') = (decline_reason IS NOT NULL))
);
CREATE INDEX referrals_hospital ON referrals (hospital, requested_at DESC);
-- The other way of the link: the transfer incident names its referral.
ALTER TABLE incidents ADD COLUMN referral_id uuid UNIQUE REFERENCES referrals;
-- A consult's timeline is its events: its own name it as id, its referral's as consult_id.
CREATE INDEX events_consult ON events ((payload->>'consult_id'), id) WHERE payload ? 'consult_id';
CREATE INDEX events_consult_own ON events ((payload->>'id'), id) WHERE type LIKE 'consult.%';
-- The call type of a transfer between facilities joins a table seeded before it existed; a table seeded later
-- gets it from the default table (dispatch/triage.py).
INSERT INTO triage_types (code, label_id, label_en, priority, capabilities)
SELECT 'interfacility_transfer', 'Rujukan antar fasilitas', 'Inter-facility transfer', 'kuning', '{transport}'
 WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'triage_seeded')
ON CONFLICT (code) DO NOTHING;
