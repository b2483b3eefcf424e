-- Which bank process recorded each refund line (the job's worker name, `bank-<pid>-<random>`):
-- with several bank processes on one database, every line of a batch shows the one that held it.
ALTER TABLE refund_lines ADD COLUMN worker TEXT;
