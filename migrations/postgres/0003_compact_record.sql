-- A compact record (issue 15), as SQLite's 0004: one row per invocation, its rules and cards as
-- JSONB columns of that row, instead of rows in `invocation_rules` and `cards` with their four
-- indexes. A group commit then writes one heap tuple and two index entries per invocation and
-- one narrow card_index entry per card.
--
--   rules: JSON array of the rule ids that fired, first-fired order, each once.
--   cards: JSON array, one element per card in card order:
--          [uuid, rule_id, indicator, summary, suggestions, override_reasons]
--          (suggestions / override_reasons: arrays of strings; null for cards recorded before
--          0002, which kept neither).
--
-- card_index: the lookup by card uuid that feedback needs, with the card's rule id for the
-- feedback reports. Purge deletes its rows with their invocation (no foreign key to
-- invocations, so no index on invocation_id is needed on the write path).
--
-- Existing data is carried over here (a durable audit trail never loses records on upgrade):
-- rules and cards are folded into their invocation's row, card_index is filled from `cards`,
-- and feedback keeps every row, now referring to card_index.
ALTER TABLE invocations ADD COLUMN rules JSONB NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE invocations ADD COLUMN cards JSONB NOT NULL DEFAULT '[]'::jsonb;

UPDATE invocations i SET
    rules = COALESCE((SELECT jsonb_agg(r.rule_id ORDER BY r.position)
                        FROM invocation_rules r WHERE r.invocation_id = i.id), '[]'::jsonb),
    cards = COALESCE((SELECT jsonb_agg(jsonb_build_array(c.uuid, c.rule_id, c.indicator,
                                                         c.summary, c.suggestions,
                                                         c.override_reasons)
                                       ORDER BY c.position)
                        FROM cards c WHERE c.invocation_id = i.id), '[]'::jsonb);

CREATE TABLE card_index (
    uuid          UUID NOT NULL PRIMARY KEY,
    invocation_id UUID NOT NULL,
    rule_id       TEXT NOT NULL
);
INSERT INTO card_index (uuid, invocation_id, rule_id)
    SELECT uuid, invocation_id, rule_id FROM cards;

ALTER TABLE feedback DROP CONSTRAINT feedback_card_uuid_fkey;
ALTER TABLE feedback ADD CONSTRAINT feedback_card_uuid_fkey
    FOREIGN KEY (card_uuid) REFERENCES card_index (uuid) ON DELETE CASCADE;

DROP TABLE invocation_rules;
DROP TABLE cards;
