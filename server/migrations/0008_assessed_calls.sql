-- A call is recorded, then assessed (duplicate and prank warnings) in a second transaction. A process
-- killed in between leaves a call with no assessment; ``assessed_at`` says which calls still need one,
-- and every process assesses those at start-up.
ALTER TABLE incidents ADD COLUMN assessed_at timestamptz;
-- Calls assessed before the column existed: their call.assessed event says when.
UPDATE incidents i SET assessed_at = e.at
  FROM events e
 WHERE e.type = 'call.assessed' AND e.payload->>'incident_id' = i.id::text;
-- A closed call needs no assessment any more.
UPDATE incidents SET assessed_at = closed_at WHERE assessed_at IS NULL AND closed_at IS NOT NULL;
CREATE INDEX incidents_unassessed ON incidents (received_at) WHERE assessed_at IS NULL;
