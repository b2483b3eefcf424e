-- Wrong payment passwords in a row, and the business time until which payment stays locked after
-- the fifth (0: not locked). A right password starts the count again; so does the lock ending.
ALTER TABLE accounts ADD COLUMN pay_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN pay_locked_until_ms BIGINT NOT NULL DEFAULT 0;
