-- The index of every open incident by time served no statement, but the planner took it for a call's possible
-- duplicates whenever its statistics expected no open incident: after a year of calls, all closed when the table
-- was last analyzed, a flood's calls each read every open incident through it (autovacuum analyzes a table that
-- large again only after a tenth of it has changed). Without it the open ones near the call are found by place
-- (`incidents_open_place`), whatever the statistics.
DROP INDEX incidents_open;
