-- Reconciliation: the order successful payments commit in (for the platform's real-time pull),
-- the business date fixed when a sign-up, a cancellation or a refund batch begins, and the T+1
-- files built once per closed date.

-- One counter row per sequence. A debit bumps `payment_success` in its own transaction, after
-- the business day's row: the row stays locked until commit, so sequence order is commit order
-- and a reader that has seen number n has seen every number below it.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('payment_success', 0);

-- For SUCCESS: the payment's place in the real-time reconciliation stream.
ALTER TABLE payments ADD COLUMN success_seq BIGINT;
-- Payments that succeeded before this migration get numbers in the order they were paid.
UPDATE payments SET success_seq = (
    SELECT COUNT(*) FROM payments p WHERE p.status = 'SUCCESS'
      AND (p.paid_at_ms < payments.paid_at_ms
           OR (p.paid_at_ms = payments.paid_at_ms AND p.order_no <= payments.order_no))
) WHERE status = 'SUCCESS';
UPDATE counters SET value = (SELECT COUNT(*) FROM payments WHERE status = 'SUCCESS')
  WHERE name = 'payment_success';
CREATE UNIQUE INDEX payments_by_success_seq ON payments (success_seq);

-- The business date of a refund batch: fixed when the job first takes it; every line of the
-- batch belongs to it, whenever the line is processed.
ALTER TABLE refund_progress ADD COLUMN business_date TEXT;
-- The day files read a closed date's records page by page in key order: one range scan each.
CREATE INDEX payments_by_date_and_order ON payments (business_date, order_no);
CREATE INDEX refund_lines_by_date ON refund_lines (business_date, batch_no, seq);
CREATE INDEX signups_by_date_and_id ON signups (business_date, signup_id);
CREATE INDEX signups_by_cancelled_date ON signups (cancelled_date, signup_id);

-- The T+1 reconciliation files, built once per (kind, closed date) and kept in the file store.
CREATE TABLE day_files (
    kind          TEXT NOT NULL,   -- SIGNUP | ORDER | CLEARING
    business_date TEXT NOT NULL,
    file_name     TEXT NOT NULL,   -- in the file store's recon area
    sha256        TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    record_count  BIGINT NOT NULL,
    total_fen     BIGINT NOT NULL, -- ORDER: payments; CLEARING: payments; SIGNUP: 0
    built_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (kind, business_date)
);
