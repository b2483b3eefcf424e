-- Messages sent in the same millisecond of business time (a frozen clock sends them all in one)
-- are listed newest first by the order they were written in.
ALTER TABLE sms_outbox ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sms_outbox_by_seq ON sms_outbox (seq);
