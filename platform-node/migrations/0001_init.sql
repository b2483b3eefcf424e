-- The platform's records. Portable SQL: runs on SQLite and PostgreSQL alike.
-- Money is integer fen (BIGINT); times are milliseconds since the Unix epoch (BIGINT).

CREATE TABLE accounts (
    email               TEXT PRIMARY KEY,
    real_name           TEXT NOT NULL,
    login_password_hash TEXT NOT NULL,   -- argon2id PHC string
    pay_password_hash   TEXT NOT NULL,   -- argon2id PHC string
    status              TEXT NOT NULL,   -- NORMAL | FROZEN | CLOSED
    created_at_ms       BIGINT NOT NULL,
    updated_at_ms       BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,      -- sha256 of the bearer token; the token itself is not kept
    email         TEXT NOT NULL REFERENCES accounts (email),
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX sessions_by_email ON sessions (email);

-- The platform's copy of the bank's sign-ups (卡通签约), keyed by the bank's sign-up id.
CREATE TABLE card_links (
    signup_id          TEXT PRIMARY KEY,
    platform_link_id   TEXT NOT NULL UNIQUE,
    email              TEXT NOT NULL REFERENCES accounts (email),
    real_name          TEXT NOT NULL,
    id_type            TEXT NOT NULL,
    card_number_masked TEXT NOT NULL,
    status             TEXT NOT NULL,   -- SIGNED | ACTIVE | CANCELLED
    daily_limit_fen    BIGINT,          -- confirmed by the bank at activation
    mobile_masked      TEXT,            -- confirmed by the bank at activation
    signed_at_ms       BIGINT NOT NULL,
    activated_at_ms    BIGINT,
    cancelled_at_ms    BIGINT,
    updated_at_ms      BIGINT NOT NULL
);
CREATE INDEX card_links_by_email ON card_links (email);

CREATE TABLE audit_log (
    at_ms     BIGINT NOT NULL,
    operation TEXT NOT NULL,
    subject   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (at_ms);
