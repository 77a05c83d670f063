-- What each hospital reports it can take now (SIRANAP-shaped): free beds by class and whether each of its services
-- runs now. One row per figure, so two desks updating different figures at once never overwrite each other; each
-- figure keeps its own time and who set it. No row: never reported ("unknown", not 0).
CREATE TABLE hospital_beds (
    facility_code text NOT NULL REFERENCES facilities ON DELETE CASCADE,
    bed_class     text NOT NULL CHECK (bed_class IN ('igd', 'icu', 'nicu', 'picu', 'isolation', 'ward')),
    free          integer NOT NULL CHECK (free BETWEEN 0 AND 9999),
    set_at        timestamptz NOT NULL,
    set_by        text NOT NULL,
    PRIMARY KEY (facility_code, bed_class)
);

CREATE TABLE hospital_service_states (
    facility_code text NOT NULL REFERENCES facilities ON DELETE CASCADE,
    service       text NOT NULL,
    available     boolean NOT NULL,
    set_at        timestamptz NOT NULL,
    set_by        text NOT NULL,
    PRIMARY KEY (facility_code, service)
);
