-- Batch refunds: the batch files the platform pushed, the batch job's progress through each, and
-- the result of every line. The files themselves live in the file store (data-dir/files).

-- One row per accepted batch file. Status ACCEPTED until the batch job finishes it, then DONE;
-- "processing" is read from refund_progress. While a bank process works on a batch it holds
-- this row locked (PostgreSQL: FOR NO KEY UPDATE SKIP LOCKED), so no other process takes it.
CREATE TABLE refund_batches (
    batch_no             TEXT PRIMARY KEY,
    receipt_no           TEXT NOT NULL UNIQUE,
    sha256               TEXT NOT NULL,
    size_bytes           BIGINT NOT NULL,
    file_name            TEXT NOT NULL,   -- in the file store's refund/batches
    business_date        TEXT NOT NULL,   -- the header's date
    record_count         BIGINT NOT NULL,
    total_fen            BIGINT NOT NULL,
    accepted_at_ms       BIGINT NOT NULL,
    status               TEXT NOT NULL,   -- ACCEPTED | DONE
    result_file_name     TEXT,            -- for DONE: in the file store's refund/results
    result_sha256        TEXT,
    result_size_bytes    BIGINT,
    result_business_date TEXT,            -- the bank's date the batch was finished on
    success_count        BIGINT,
    success_fen          BIGINT,
    failed_count         BIGINT,
    failed_fen           BIGINT,
    done_at_ms           BIGINT
);
CREATE INDEX refund_batches_by_status ON refund_batches (status, accepted_at_ms);

-- The batch job's cursor: the next line to process and where it starts in the file. Each chunk
-- of lines moves it in the same transaction that records and credits those lines, and only
-- from the value the chunk started at: a line is processed exactly once, however often the job
-- is killed and restarted.
CREATE TABLE refund_progress (
    batch_no      TEXT PRIMARY KEY,
    next_seq      BIGINT NOT NULL,
    byte_offset   BIGINT NOT NULL,
    worker        TEXT,              -- the bank process that last moved it
    started_at_ms BIGINT,
    updated_at_ms BIGINT NOT NULL
);

-- The outcome of every line of every batch: the refund ledger.
CREATE TABLE refund_lines (
    batch_no        TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    refund_id       TEXT NOT NULL,
    order_no        TEXT NOT NULL,
    amount_text     TEXT NOT NULL,   -- as written in the file
    amount_fen      BIGINT,          -- the amount, when it was a valid refund amount
    status          TEXT NOT NULL,   -- SUCCESS | FAILED
    reason_code     TEXT,            -- for FAILED
    reason_text     TEXT,
    card_number     TEXT,            -- for SUCCESS: the card credited
    business_date   TEXT NOT NULL,   -- the bank's date the line was processed on
    processed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (batch_no, seq)
);
CREATE INDEX refund_lines_by_refund_id ON refund_lines (refund_id);
CREATE INDEX refund_lines_by_order ON refund_lines (order_no);
-- A refund id is used once; only the lines refused for reusing one may repeat it.
CREATE UNIQUE INDEX refund_lines_one_per_refund_id
    ON refund_lines (refund_id) WHERE status = 'SUCCESS' OR reason_code <> 'REFUND_ID_REUSED';

-- How much of each payment refunds have credited back; never more than the payment.
ALTER TABLE payments ADD COLUMN refunded_fen BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0);
