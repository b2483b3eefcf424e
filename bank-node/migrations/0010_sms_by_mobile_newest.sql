-- A tester's client reads its one-time code from the outbox after every payment: one mobile's
-- newest messages, in the outbox's order (sent_at_ms, seq, sms_id). This index gives them from
-- its newest end, as many as asked for, whatever the outbox's size; the one it replaces found the
-- mobile's messages but left them to be sorted, all of them, on every read.
CREATE INDEX sms_outbox_by_mobile_newest ON sms_outbox (mobile, sent_at_ms, seq, sms_id);
DROP INDEX sms_outbox_by_mobile;
