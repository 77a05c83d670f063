-- A field phone that connects or resumes reads where its replay starts from its unit's assignments still active or
-- ended within the window (`server.unit_replay`). Only the active ones had an index by unit, so that read scanned
-- every assignment ever made: after a year, tens of milliseconds at every reconnect of every phone.
CREATE INDEX assignments_unit_ended ON assignments (unit_id, ended_at);
