-- What a hospital can treat at all (region data: cath_lab, ct, obstetrics...; dispatch/hospitals.py holds the
-- vocabulary), and the one service a call type needs of its destination hospital (NULL: none in particular).
ALTER TABLE facilities ADD COLUMN services text[] NOT NULL DEFAULT '{}';
ALTER TABLE triage_types ADD COLUMN service text;
-- Default call types gain the service the default table names for them; a table seeded later gets it from there.
UPDATE triage_types t SET service = seeded.service, updated_at = now()
  FROM (VALUES ('chest_pain', 'cath_lab'), ('stroke', 'ct'), ('major_trauma', 'trauma_surgery'),
               ('traffic_accident', 'trauma_surgery'), ('burns', 'burns'), ('labour', 'obstetrics'),
               ('newborn_emergency', 'nicu')) AS seeded (code, service)
 WHERE t.code = seeded.code;
