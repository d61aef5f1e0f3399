-- Audit trail v2 (issue 15): every card reconstructable, feedback checked against its card.
--
-- parameter_sets: each effective parameter set once, keyed by the SHA-256 of its JSON
-- ({name: {value, source}}, source = catalogue-default | site-configuration); invocations
-- name the set that produced their cards. Calls recorded before this migration have none.
CREATE TABLE parameter_sets (
    digest     TEXT NOT NULL PRIMARY KEY,
    parameters TEXT NOT NULL,
    first_seen TEXT NOT NULL
);
ALTER TABLE invocations ADD COLUMN parameter_set TEXT REFERENCES parameter_sets (digest);

-- What each card offered, as JSON arrays of strings: its suggestions' uuids and its
-- overrideReasons' codes. Feedback may only accept the former and give the latter.
-- NULL for cards recorded before this migration: nothing can be checked against them.
ALTER TABLE cards ADD COLUMN suggestions TEXT;
ALTER TABLE cards ADD COLUMN override_reasons TEXT;

-- Feedback checked against its card when stored. Reports count only these. Rows stored before
-- this migration were not checked: those that name no suggestion and no reason code claim
-- nothing a card could contradict, and count; the others cannot be checked and do not.
ALTER TABLE feedback ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
UPDATE feedback SET verified = 1
 WHERE accepted_suggestions = '[]' AND override_reason_code IS NULL;
