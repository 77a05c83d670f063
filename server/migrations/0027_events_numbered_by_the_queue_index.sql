-- Each backend plans the trigger's `DELETE FROM event_queue WHERE seq = ...` once and keeps the plan. The queue is
-- empty whenever autovacuum looks (it never holds a committed row), and on an empty table a scan costs least: a
-- plan made then scanned every page the queue had grown to since (other transactions' rows, dead ones until the
-- next vacuum), at every event numbered. In a dispatch benchmark window a tenth of the numberings scanned the queue
-- (553 of 5,301), and a numbering read 26.5 pages on average, against 4.6 in a window where none did. Without
-- sequential scans the plan is the primary key's, whatever the statistics.
ALTER FUNCTION number_events() SET enable_seqscan = off;
