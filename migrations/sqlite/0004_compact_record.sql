-- A compact record (issue 15): one row per invocation, its rules and cards as JSON columns of
-- that row, instead of rows in `invocation_rules` and `cards` with their indexes. A group
-- commit rewrites every B-tree page it touches; the old layout touched seven B-trees per commit
-- (invocations, its id and time indexes, invocation_rules, cards and its uuid and invocation
-- indexes), this one four (invocations, its two indexes, card_index).
--
--   rules: JSON array of the rule ids that fired, first-fired order, each once.
--   cards: JSON array, one element per card in card order:
--          [uuid, rule_id, indicator, summary, suggestions, override_reasons]
--          (suggestions / override_reasons: arrays of strings; null for cards recorded before
--          0002, which kept neither).
--
-- card_index: the one lookup by card uuid the service needs (feedback names a card by uuid),
-- with the card's rule id for the feedback reports. Card uuids are UUID v7 (time-ordered), so
-- each commit appends at the right edge of this B-tree.
--
-- Existing data is carried over in this migration (a durable audit trail never loses records
-- on upgrade): rules and cards are folded into their invocation's row, card_index is filled
-- from `cards`, feedback is copied row for row (ids, verified flags and all) into a table that
-- refers to card_index instead of cards.
ALTER TABLE invocations ADD COLUMN rules TEXT NOT NULL DEFAULT '[]';
ALTER TABLE invocations ADD COLUMN cards TEXT NOT NULL DEFAULT '[]';

UPDATE invocations SET
    rules = (SELECT json_group_array(r.rule_id ORDER BY r.position)
               FROM invocation_rules r WHERE r.invocation_id = invocations.id),
    cards = (SELECT json_group_array(json_array(c.uuid, c.rule_id, c.indicator, c.summary,
                                                json(c.suggestions), json(c.override_reasons))
                                     ORDER BY c.position)
               FROM cards c WHERE c.invocation_id = invocations.id);

CREATE TABLE card_index (
    uuid          TEXT NOT NULL PRIMARY KEY,
    invocation_id TEXT NOT NULL,
    rule_id       TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO card_index (uuid, invocation_id, rule_id)
    SELECT uuid, invocation_id, rule_id FROM cards;

CREATE TABLE feedback_v4 (
    id                      INTEGER NOT NULL PRIMARY KEY,
    card_uuid               TEXT    NOT NULL REFERENCES card_index (uuid) ON DELETE CASCADE,
    service_id              TEXT    NOT NULL,
    outcome                 TEXT    NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    accepted_suggestions    TEXT    NOT NULL DEFAULT '[]',
    override_reason_code    TEXT,
    override_reason_system  TEXT,
    override_reason_display TEXT,
    user_comment            TEXT,
    outcome_timestamp       TEXT    NOT NULL,
    received_at             TEXT    NOT NULL,
    verified                INTEGER NOT NULL DEFAULT 0,
    -- An EHR may resend the same feedback; it is kept once. The index also serves lookups by card.
    UNIQUE (card_uuid, outcome, outcome_timestamp)
);
INSERT INTO feedback_v4 (id, card_uuid, service_id, outcome, accepted_suggestions,
        override_reason_code, override_reason_system, override_reason_display, user_comment,
        outcome_timestamp, received_at, verified)
    SELECT id, card_uuid, service_id, outcome, accepted_suggestions, override_reason_code,
        override_reason_system, override_reason_display, user_comment, outcome_timestamp,
        received_at, verified
    FROM feedback;

-- Children first: nothing refers to the old feedback table, and once it is gone nothing refers
-- to cards, so dropping them deletes nothing else.
DROP TABLE feedback;
DROP TABLE cards;
DROP TABLE invocation_rules;
ALTER TABLE feedback_v4 RENAME TO feedback;
