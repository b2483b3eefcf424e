-- An order's status index served one query, the sweep of the orders still open; a day's
-- paid orders, nearly all of them, were in it for nothing and moved in it when paid. It now holds
-- the open orders only (the sweep's condition, word for word, as SQLite matches it). The date
-- index holds the orders that have a date (the paid ones): every query of it asks for one date.
DROP INDEX orders_by_status;
CREATE INDEX orders_open ON orders (order_no) WHERE status IN ('CREATED', 'AWAITING_CODE', 'UNKNOWN');
DROP INDEX orders_by_business_date;
CREATE INDEX orders_by_business_date ON orders (business_date, order_no)
    WHERE business_date IS NOT NULL;
