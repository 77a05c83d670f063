-- The incident's assignment version: bumped on every assign, withdraw, re-offer, release and close of its
-- units. The console sends the version it showed the operator with a dispatch; a different one is refused
-- (409 stale), so a repeated key press or a list that moved under the operator never sends a second unit.
ALTER TABLE incidents ADD COLUMN assignment_version integer NOT NULL DEFAULT 0;
