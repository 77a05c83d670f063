-- A destination the crew reported from its phone, by the phone's report id: a report resent after its reply was lost
-- counts once, so it cannot undo a choice made since.
CREATE TABLE destination_reports (
    unit_id     text NOT NULL REFERENCES units,
    report_id   text NOT NULL,
    incident_id uuid NOT NULL REFERENCES incidents,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit_id, report_id)
);
