-- The audit log by action and address served the login limits when they counted failed logins in it; they count
-- in `login_counters` now, and no statement reads the audit log by address. Every audited change (each stored
-- chat message among them) still paid one more index entry for it.
DROP INDEX audit_log_action_address;
