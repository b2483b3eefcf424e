-- Card-link payment orders. The order number is the idempotency key at both institutions.
CREATE TABLE orders (
    order_no           TEXT PRIMARY KEY,
    email              TEXT NOT NULL REFERENCES accounts (email),
    signup_id          TEXT NOT NULL,
    card_number_masked TEXT NOT NULL,
    amount_fen         BIGINT NOT NULL CHECK (amount_fen BETWEEN 1 AND 500000),
    description        TEXT NOT NULL,
    status             TEXT NOT NULL,   -- CREATED | AWAITING_CODE | SUCCESS | FAILED | UNKNOWN
    mobile_masked      TEXT,            -- where the bank sent the code
    code_expires_at_ms BIGINT,
    bank_serial_no     TEXT,            -- for SUCCESS: the bank's serial number
    business_date      TEXT,            -- for SUCCESS: the bank's business date of the debit
    failure_class      TEXT,            -- for FAILED
    failure_reason     TEXT,
    failure_message    TEXT,
    failure_domain     TEXT,
    created_at_ms      BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL
);
CREATE INDEX orders_by_email ON orders (email, created_at_ms);
CREATE INDEX orders_by_status ON orders (status);
