-- Audit trail of CDS Hooks invocations, their cards and the feedback on those cards (SQLite).
--
-- Timestamps are UTC text in one fixed-width form, 'YYYY-MM-DDTHH:MM:SS.ffffffZ', written by
-- the service, so that text order is time order and range filters can use the indexes.
-- UUIDs are lower-case hyphenated text. No access token and no patient data beyond the FHIR
-- ids that the request itself carries are stored.

CREATE TABLE invocations (
    id                TEXT    NOT NULL PRIMARY KEY,
    time              TEXT    NOT NULL,
    service_id        TEXT    NOT NULL,
    hook              TEXT,
    hook_instance     TEXT,
    ehr_issuer        TEXT,
    knowledge_version TEXT    NOT NULL,
    patient_id        TEXT,
    request_sha256    TEXT,
    latency_ms        REAL    NOT NULL,
    http_status       INTEGER NOT NULL
);
-- Reports, export and purge all select invocations by time.
CREATE INDEX invocations_time_idx ON invocations (time);

-- The rule ids that fired in an invocation (a rule may fire without producing its own card).
CREATE TABLE invocation_rules (
    invocation_id TEXT    NOT NULL REFERENCES invocations (id) ON DELETE CASCADE,
    rule_id       TEXT    NOT NULL,
    position      INTEGER NOT NULL,
    PRIMARY KEY (invocation_id, rule_id)
) WITHOUT ROWID;
CREATE INDEX invocation_rules_rule_idx ON invocation_rules (rule_id);

CREATE TABLE cards (
    uuid          TEXT    NOT NULL PRIMARY KEY,
    invocation_id TEXT    NOT NULL REFERENCES invocations (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    rule_id       TEXT    NOT NULL,
    indicator     TEXT    NOT NULL,
    summary       TEXT    NOT NULL
);
-- The foreign key index (cascade on purge, export by invocation) and the per-rule report.
CREATE INDEX cards_invocation_idx ON cards (invocation_id);
CREATE INDEX cards_rule_idx ON cards (rule_id);

CREATE TABLE feedback (
    id                      INTEGER NOT NULL PRIMARY KEY,
    card_uuid               TEXT    NOT NULL REFERENCES cards (uuid) ON DELETE CASCADE,
    service_id              TEXT    NOT NULL,
    outcome                 TEXT    NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    accepted_suggestions    TEXT    NOT NULL DEFAULT '[]',
    override_reason_code    TEXT,
    override_reason_system  TEXT,
    override_reason_display TEXT,
    user_comment            TEXT,
    outcome_timestamp       TEXT    NOT NULL,
    received_at             TEXT    NOT NULL,
    -- An EHR may resend the same feedback; it is kept once. The index also serves lookups by card.
    UNIQUE (card_uuid, outcome, outcome_timestamp)
);
