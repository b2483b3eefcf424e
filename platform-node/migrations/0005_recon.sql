-- Reconciliation with the bank (the bank's data is the truth): the real-time cursor, every
-- adjustment made to the platform's records, the T+1 runs, their error cases, and the staging
-- table a downloaded file is loaded into for comparison.

-- The bank's business dates of a card-link's sign-up and cancellation, as the bank sent them.
ALTER TABLE card_links ADD COLUMN business_date TEXT;
ALTER TABLE card_links ADD COLUMN cancelled_date TEXT;
CREATE INDEX card_links_by_business_date ON card_links (business_date, signup_id);
CREATE INDEX card_links_by_cancelled_date ON card_links (cancelled_date, signup_id);
-- A date's orders in order-number order: one range scan (reconciliation pages through them).
CREATE INDEX orders_by_business_date ON orders (business_date, order_no);
-- Who wrote an order: the pay flow (PAY), reconciliation from the bank's record (RECON), or an
-- operator by hand (MANUAL, to reproduce a platform-only record).
ALTER TABLE orders ADD COLUMN origin TEXT NOT NULL DEFAULT 'PAY';

-- Named cursors: `realtime` is the last success sequence number the bank streamed and the
-- platform applied.
CREATE TABLE recon_cursors (
    name          TEXT PRIMARY KEY,
    value         BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- Every change reconciliation made to an order or a card-link, with what it was and became.
CREATE TABLE adjustments (
    adjustment_id TEXT PRIMARY KEY,
    record_kind   TEXT NOT NULL,   -- ORDER | SIGNUP
    record_key    TEXT NOT NULL,   -- order number or sign-up id
    before_state  TEXT NOT NULL,   -- status and amount before, e.g. "UNKNOWN 12.30" ("-": no record)
    after_state   TEXT NOT NULL,
    source        TEXT NOT NULL,   -- REALTIME | T1_SIGNUP | T1_ORDER | T1_CLEARING
    reason        TEXT NOT NULL,
    case_id       TEXT,            -- the error case it resolved (T+1)
    at_ms         BIGINT NOT NULL
);
CREATE INDEX adjustments_by_key ON adjustments (record_key);
CREATE INDEX adjustments_by_time ON adjustments (at_ms);

-- One row per T+1 run of one file.
CREATE TABLE recon_runs (
    run_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,   -- SIGNUP | ORDER | CLEARING
    business_date TEXT NOT NULL,
    sha256        TEXT NOT NULL,   -- of the bank's file compared
    record_count  BIGINT NOT NULL,
    matched       BIGINT NOT NULL,
    cases         BIGINT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    done_at_ms    BIGINT
);
CREATE INDEX recon_runs_by_date ON recon_runs (business_date, kind);

-- Every difference a T+1 run found (差错): its category, the bank's and the platform's record,
-- what was done, and whether it is settled. One case per (date, file kind, key): a later run of
-- the same file finds the case again instead of opening another.
CREATE TABLE recon_cases (
    case_id         TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL,
    kind            TEXT NOT NULL,   -- SIGNUP | ORDER | CLEARING
    business_date   TEXT NOT NULL,
    record_key      TEXT NOT NULL,   -- order number, sign-up id (+ event), refund id, or TOTALS
    category        TEXT NOT NULL,   -- BANK_ONLY | PLATFORM_ONLY | AMOUNT_DIFFERS | STATUS_DIFFERS | DETAIL_DIFFERS | TOTALS_DIFFER
    bank_record     TEXT NOT NULL,   -- the bank's side, as text ("-": none)
    platform_record TEXT NOT NULL,
    amount_fen      BIGINT NOT NULL, -- the money at stake (bank's amount, or the difference)
    action          TEXT NOT NULL,   -- what the platform did
    status          TEXT NOT NULL,   -- AUTO_RESOLVED | NEEDS_STAFF | CLOSED
    note            TEXT,            -- staff's note when closing
    created_at_ms   BIGINT NOT NULL,
    closed_at_ms    BIGINT
);
CREATE UNIQUE INDEX recon_cases_one_per_key ON recon_cases (business_date, kind, record_key);
CREATE INDEX recon_cases_by_status ON recon_cases (status, created_at_ms);

-- The keys of a downloaded file's records, kept only during its run: what the platform has
-- and the file does not is then one query.
CREATE TABLE recon_staging (
    run_id     TEXT NOT NULL,
    record_key TEXT NOT NULL,
    PRIMARY KEY (run_id, record_key)
);

CREATE INDEX refunds_by_refund_id ON refunds (refund_id);
CREATE INDEX refund_batches_by_result_date ON refund_batches (result_business_date);
