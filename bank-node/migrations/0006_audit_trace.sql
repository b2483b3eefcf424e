-- Audit lines carry the request's trace id (W3C trace context) and the real time they were
-- written, so that `ibsim trace` can put both nodes' lines about one order in order.
ALTER TABLE audit_log ADD COLUMN trace_id TEXT;
ALTER TABLE audit_log ADD COLUMN real_at_us BIGINT NOT NULL DEFAULT 0;
CREATE INDEX audit_log_by_subject ON audit_log (subject, real_at_us);
