-- Batch refunds as the platform's settlement staff run them: each batch file pushed to the bank,
-- and every line of the result files fetched back. The files live in the file store
-- (data-dir/files).

CREATE TABLE refund_batches (
    batch_no             TEXT PRIMARY KEY,
    status               TEXT NOT NULL,   -- SUBMITTED | REFUSED | ACCEPTED | PROCESSING | RESULT_READY | DONE
    sha256               TEXT NOT NULL,
    size_bytes           BIGINT NOT NULL,
    file_name            TEXT NOT NULL,   -- in the file store's refund/batches
    business_date        TEXT NOT NULL,   -- the header's date
    record_count         BIGINT NOT NULL,
    total_fen            BIGINT NOT NULL,
    receipt_no           TEXT,            -- the bank's, once accepted
    accepted_at_ms       BIGINT,
    processed_count      BIGINT NOT NULL DEFAULT 0,
    failure_class        TEXT,            -- for REFUSED: the bank's refusal
    failure_reason       TEXT,
    failure_message      TEXT,
    failure_domain       TEXT,
    failure_line         BIGINT,
    failure_field        TEXT,
    result_sha256        TEXT,            -- for RESULT_READY and DONE
    result_size_bytes    BIGINT,
    result_business_date TEXT,
    success_count        BIGINT,
    success_fen          BIGINT,
    failed_count         BIGINT,
    failed_fen           BIGINT,
    result_file_name     TEXT,            -- for DONE: in the file store's refund/results
    created_at_ms        BIGINT NOT NULL,
    updated_at_ms        BIGINT NOT NULL
);

-- Every line of every applied result file.
CREATE TABLE refunds (
    batch_no      TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    refund_id     TEXT NOT NULL,
    order_no      TEXT NOT NULL,
    amount_text   TEXT NOT NULL,
    amount_fen    BIGINT,           -- the amount, when valid
    status        TEXT NOT NULL,    -- SUCCESS | FAILED
    reason_code   TEXT,
    reason_text   TEXT,
    applied_at_ms BIGINT NOT NULL,
    PRIMARY KEY (batch_no, seq)
);
CREATE INDEX refunds_by_order ON refunds (order_no);

-- How much of each order batch refunds have given back, as the bank's result files say.
ALTER TABLE orders ADD COLUMN refunded_fen BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0);
