-- A status report kept on a phone without signal arrives late: it counts at the time the crew made it
-- (``at``), and ``received_at`` says when it reached the server. Its ``report_id`` (the phone's id for
-- that button press) makes a report that arrives twice count once.
ALTER TABLE unit_status_log
    ADD COLUMN received_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN report_id   text;
CREATE UNIQUE INDEX unit_status_log_report ON unit_status_log (unit_id, report_id) WHERE report_id IS NOT NULL;
