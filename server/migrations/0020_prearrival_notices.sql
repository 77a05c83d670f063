-- The patient's age and sex, as the operator or the crew learns them: the receiving hospital's notice carries them.
CREATE TABLE incident_patients (
    incident_id uuid PRIMARY KEY REFERENCES incidents,
    age         integer CHECK (age BETWEEN 0 AND 120),
    sex         text CHECK (sex IN ('male', 'female')),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Vital signs the crew measured, each set at the time it was measured; a set kept on a phone without signal and
-- sent again is recorded once (its client key).
CREATE TABLE incident_vitals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id uuid NOT NULL REFERENCES incidents,
    client_key  text NOT NULL UNIQUE,
    measured_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    recorded_by bigint REFERENCES users,
    unit_id     text REFERENCES units,
    systolic    integer,
    diastolic   integer,
    pulse       integer,
    spo2        integer,
    gcs         integer,
    resp_rate   integer
);
CREATE INDEX incident_vitals_incident ON incident_vitals (incident_id, measured_at);

-- A pre-arrival notice to the destination hospital (dispatch/prearrival.py holds the lifecycle). An incident has
-- at most one open notice: choosing another hospital withdraws it first.
CREATE TABLE prearrival_notices (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     uuid NOT NULL REFERENCES incidents,
    facility_code   text NOT NULL REFERENCES facilities,
    status          text NOT NULL DEFAULT 'sent'
                    CHECK (status IN ('sent', 'acknowledged', 'declined', 'withdrawn', 'handed_over')),
    sent_at         timestamptz NOT NULL DEFAULT now(),
    sent_by         text NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    declined_at     timestamptz,
    decline_reason  text,
    withdrawn_at    timestamptz,
    arrived_at      timestamptz,  -- the first unit's at_hospital, copied at handover
    handed_over_at  timestamptz,
    handed_over_by  text,
    closed_by       text  -- who declined or withdrew it
);
CREATE UNIQUE INDEX prearrival_notices_one_open ON prearrival_notices (incident_id) WHERE status IN ('sent', 'acknowledged');
CREATE INDEX prearrival_notices_facility ON prearrival_notices (facility_code, sent_at);
CREATE INDEX prearrival_notices_handed_over ON prearrival_notices (handed_over_at) WHERE handed_over_at IS NOT NULL;
