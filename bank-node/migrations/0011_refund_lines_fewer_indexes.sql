-- Every refund line goes into its table and each of the table's indexes, and a batch has up to
-- millions of lines. Two of them served nothing: the refund job reads a chunk's used refund ids
-- from the unique index `refund_lines_one_per_refund_id` (its query repeats the index's
-- condition), and no query looks lines up by order.
DROP INDEX IF EXISTS refund_lines_by_refund_id;
DROP INDEX IF EXISTS refund_lines_by_order;
