-- Login attempt counters, one row per (scope, key) and fixed window. An attempt is reserved here,
-- under the row lock of an upsert, BEFORE its password is checked: N guesses arriving at once, on
-- any number of server processes, get the counts 1..N and only those within the limit are checked.
--   scope 'pair'    key 'username address'  hard limit per account and address
--   scope 'address' key 'address'           hard limit per address across accounts
--   scope 'account' key 'username'          slowdown (never a block) and the admin alert
CREATE TABLE login_counters (
    scope        text NOT NULL CHECK (scope IN ('pair', 'address', 'account')),
    key          text NOT NULL,
    window_start timestamptz NOT NULL,
    attempts     integer NOT NULL CHECK (attempts >= 0),
    alerted      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (scope, key)
);
CREATE INDEX login_counters_window ON login_counters (window_start);
