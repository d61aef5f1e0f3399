-- A leaner write path (issue 15): every group commit rewrites the B-tree pages it touches, and
-- the two per-rule indexes cost one leaf page per distinct rule in each commit (about a third
-- of the pages a commit wrote). No query uses them: reports select invocations by time and
-- reach their rules and cards through the primary key and cards_invocation_idx (EXPLAIN QUERY
-- PLAN of the report queries is the same full scan of the per-rule rows either way).
DROP INDEX IF EXISTS cards_rule_idx;
DROP INDEX IF EXISTS invocation_rules_rule_idx;
