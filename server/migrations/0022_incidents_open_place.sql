-- A call's possible duplicates are the open incidents near it: found by place through this index, not by reading
-- every incident still open (hundreds in a flood or an earthquake) and testing each one's place.
CREATE INDEX incidents_open_place ON incidents (lat, lon) WHERE closed_at IS NULL;
