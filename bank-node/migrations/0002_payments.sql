-- Card-link payments, the SMS gateway stand-in, daily limit usage and the business days.

-- One row per platform order number: the one-time code's challenge, then the debit.
CREATE TABLE payments (
    order_no          TEXT PRIMARY KEY,
    fingerprint       TEXT NOT NULL,   -- sha256 of (sign-up id, account, amount): "same content"
    signup_id         TEXT NOT NULL REFERENCES signups (signup_id),
    card_number       TEXT NOT NULL REFERENCES cards (card_number),
    platform_account  TEXT NOT NULL,
    amount_fen        BIGINT NOT NULL CHECK (amount_fen BETWEEN 1 AND 500000),
    status            TEXT NOT NULL,   -- CODE_SENT | SUCCESS | FAILED
    otp_hash          TEXT NOT NULL,   -- sha256 of (order number, code); the code is in the SMS only
    otp_expires_at_ms BIGINT NOT NULL,
    otp_wrong_tries   BIGINT NOT NULL DEFAULT 0,
    bank_serial_no    TEXT UNIQUE,     -- for SUCCESS
    business_date     TEXT,            -- for SUCCESS: the business day the debit belongs to
    paid_at_ms        BIGINT,
    failure_class     TEXT,            -- for FAILED
    failure_reason    TEXT,
    failure_message   TEXT,
    created_at_ms     BIGINT NOT NULL,
    updated_at_ms     BIGINT NOT NULL
);
CREATE INDEX payments_by_business_date ON payments (business_date);

-- What each card paid per business day: the daily cumulative limit is checked against this row
-- in the same transaction as the debit.
CREATE TABLE daily_usage (
    card_number   TEXT NOT NULL,
    business_date TEXT NOT NULL,
    used_fen      BIGINT NOT NULL CHECK (used_fen >= 0),
    PRIMARY KEY (card_number, business_date)
);

-- Business days: OPEN while payments may land in it, CLOSED by the day-end cutover (then fixed
-- for the T+1 files). A debit bumps its day's counters in its own transaction, only while OPEN.
CREATE TABLE business_days (
    business_date     TEXT PRIMARY KEY,
    status            TEXT NOT NULL,   -- OPEN | CLOSED
    payment_count     BIGINT NOT NULL DEFAULT 0,
    payment_total_fen BIGINT NOT NULL DEFAULT 0,
    opened_at_ms      BIGINT NOT NULL,
    closed_at_ms      BIGINT
);

-- The SMS gateway stand-in's outbox: the simulated phones. Only here are one-time codes kept.
CREATE TABLE sms_outbox (
    sms_id     TEXT PRIMARY KEY,
    mobile     TEXT NOT NULL,
    body       TEXT NOT NULL,
    order_no   TEXT,
    otp_code   TEXT,
    sent_at_ms BIGINT NOT NULL
);
CREATE INDEX sms_outbox_by_mobile ON sms_outbox (mobile, sent_at_ms);
