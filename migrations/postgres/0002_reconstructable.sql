-- Audit trail v2 (issue 15): every card reconstructable, feedback checked against its card.
--
-- parameter_sets: each effective parameter set once, keyed by the SHA-256 of its JSON
-- ({name: {value, source}}, source = catalogue-default | site-configuration); invocations
-- name the set that produced their cards. Calls recorded before this migration have none.
CREATE TABLE parameter_sets (
    digest     TEXT        NOT NULL PRIMARY KEY,
    parameters JSONB       NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL
);
ALTER TABLE invocations ADD COLUMN parameter_set TEXT REFERENCES parameter_sets (digest);

-- What each card offered: its suggestions' uuids and its overrideReasons' codes (JSON arrays
-- of strings). Feedback may only accept the former and give the latter. NULL for cards
-- recorded before this migration: nothing can be checked against them.
ALTER TABLE cards ADD COLUMN suggestions JSONB;
ALTER TABLE cards ADD COLUMN override_reasons JSONB;

-- Feedback checked against its card when stored. Reports count only these. Rows stored before
-- this migration were not checked: those that name no suggestion and no reason code claim
-- nothing a card could contradict, and count; the others cannot be checked and do not.
ALTER TABLE feedback ADD COLUMN verified BOOLEAN NOT NULL DEFAULT false;
UPDATE feedback SET verified = true
 WHERE accepted_suggestions = '[]'::jsonb AND override_reason_code IS NULL;
