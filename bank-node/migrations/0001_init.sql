-- The bank's ledger of record. Portable SQL: runs on SQLite and PostgreSQL alike.
-- Money is integer fen (BIGINT); times are milliseconds since the Unix epoch (BIGINT);
-- business dates are TEXT 'YYYY-MM-DD' in China Standard Time.

CREATE TABLE cards (
    card_number          TEXT PRIMARY KEY,
    account_kind         TEXT NOT NULL,   -- CARD_ONLY | CARD_AND_PASSBOOK
    holder_name          TEXT NOT NULL,
    id_type              TEXT NOT NULL,   -- RESIDENT_ID | PASSPORT | HK_MACAO_PERMIT | TAIWAN_PERMIT
    id_number            TEXT NOT NULL,
    password_hash        TEXT NOT NULL,   -- argon2id PHC string
    balance_fen          BIGINT NOT NULL CHECK (balance_fen >= 0),
    status               TEXT NOT NULL,   -- NORMAL | LOCKED | FROZEN | CLOSED
    wrong_password_tries BIGINT NOT NULL DEFAULT 0,
    opened_at_ms         BIGINT NOT NULL,
    updated_at_ms        BIGINT NOT NULL
);

CREATE TABLE signups (
    signup_id           TEXT PRIMARY KEY,
    request_id          TEXT NOT NULL UNIQUE,
    request_fingerprint TEXT NOT NULL,   -- sha256 of the form without the card password
    card_number         TEXT NOT NULL REFERENCES cards (card_number),
    platform_account    TEXT NOT NULL,
    real_name           TEXT NOT NULL,
    id_type             TEXT NOT NULL,
    id_number           TEXT NOT NULL,
    mobile              TEXT NOT NULL,
    daily_limit_fen     BIGINT NOT NULL CHECK (daily_limit_fen BETWEEN 1 AND 500000),
    status              TEXT NOT NULL,   -- PENDING | SIGNED | FAILED | CANCELLING | CANCELLED
    failure_class       TEXT,            -- for FAILED: the refusal's class (gRPC code name)
    failure_reason      TEXT,            -- for FAILED: reason code
    failure_message     TEXT,
    failure_domain      TEXT,            -- for FAILED: which institution refused
    business_date       TEXT,            -- date it was settled (signed or failed)
    cancelled_date      TEXT,            -- date it was cancelled
    created_at_ms       BIGINT NOT NULL,
    updated_at_ms       BIGINT NOT NULL
);

-- At most one live sign-up per card: the database, not the code, keeps two tellers from racing.
CREATE UNIQUE INDEX signups_one_live_per_card
    ON signups (card_number) WHERE status IN ('PENDING', 'SIGNED', 'CANCELLING');
CREATE INDEX signups_by_business_date ON signups (business_date);

-- Every request the branch and the platform sent us, accepted or refused. Nothing secret is kept:
-- card numbers masked, no passwords.
CREATE TABLE audit_log (
    at_ms     BIGINT NOT NULL,
    operation TEXT NOT NULL,
    subject   TEXT NOT NULL,
    outcome   TEXT NOT NULL,   -- OK or the refusal's reason code
    detail    TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (at_ms);
