-- A payment is written when its code is sent, with no business date and no success number, and
-- its debit gives it both. Each index is one more B-tree that both writes touch, so the indexes
-- on those two columns now hold only the payments that have them: every query of them asks for
-- a date or a number (`business_date = $1`, `success_seq > $1`), which both engines take to mean
-- not NULL. `payments_by_business_date` served nothing that `payments_by_date_and_order`, which
-- begins with the same column, does not.
DROP INDEX payments_by_business_date;
DROP INDEX payments_by_success_seq;
CREATE UNIQUE INDEX payments_by_success_seq ON payments (success_seq) WHERE success_seq IS NOT NULL;
DROP INDEX payments_by_date_and_order;
CREATE INDEX payments_by_date_and_order ON payments (business_date, order_no)
    WHERE business_date IS NOT NULL;
