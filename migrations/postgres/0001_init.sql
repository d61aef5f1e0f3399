-- Audit trail of CDS Hooks invocations, their cards and the feedback on those cards (PostgreSQL),
-- plus the JWT replay guard used by the authentication module.
--
-- No access token and no patient data beyond the FHIR ids that the request itself carries
-- are stored.

CREATE TABLE invocations (
    id                UUID             NOT NULL PRIMARY KEY,
    time              TIMESTAMPTZ      NOT NULL,
    service_id        TEXT             NOT NULL,
    hook              TEXT,
    hook_instance     TEXT,
    ehr_issuer        TEXT,
    knowledge_version TEXT             NOT NULL,
    patient_id        TEXT,
    request_sha256    TEXT,
    latency_ms        DOUBLE PRECISION NOT NULL,
    http_status       INTEGER          NOT NULL
);
-- Reports, export and purge all select invocations by time.
CREATE INDEX invocations_time_idx ON invocations (time);

-- The rule ids that fired in an invocation (a rule may fire without producing its own card).
CREATE TABLE invocation_rules (
    invocation_id UUID    NOT NULL REFERENCES invocations (id) ON DELETE CASCADE,
    rule_id       TEXT    NOT NULL,
    position      INTEGER NOT NULL,
    PRIMARY KEY (invocation_id, rule_id)
);
CREATE INDEX invocation_rules_rule_idx ON invocation_rules (rule_id);

CREATE TABLE cards (
    uuid          UUID    NOT NULL PRIMARY KEY,
    invocation_id UUID    NOT NULL REFERENCES invocations (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    rule_id       TEXT    NOT NULL,
    indicator     TEXT    NOT NULL,
    summary       TEXT    NOT NULL
);
-- The foreign key index (cascade on purge, export by invocation) and the per-rule report.
CREATE INDEX cards_invocation_idx ON cards (invocation_id);
CREATE INDEX cards_rule_idx ON cards (rule_id);

CREATE TABLE feedback (
    id                      BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_uuid               UUID        NOT NULL REFERENCES cards (uuid) ON DELETE CASCADE,
    service_id              TEXT        NOT NULL,
    outcome                 TEXT        NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    accepted_suggestions    JSONB       NOT NULL DEFAULT '[]'::jsonb,
    override_reason_code    TEXT,
    override_reason_system  TEXT,
    override_reason_display TEXT,
    user_comment            TEXT,
    outcome_timestamp       TIMESTAMPTZ NOT NULL,
    received_at             TIMESTAMPTZ NOT NULL,
    -- An EHR may resend the same feedback; it is kept once. The index also serves lookups by card.
    UNIQUE (card_uuid, outcome, outcome_timestamp)
);

-- JWT ids already seen per issuer, until the token expires (replay protection across replicas).
CREATE TABLE jwt_replay (
    iss        TEXT        NOT NULL,
    jti        TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (iss, jti)
);
CREATE INDEX jwt_replay_expires_idx ON jwt_replay (expires_at);
