-- When the bank last told the platform a card-link's daily limit and one-time-code mobile: at
-- activation, and again each time the customer's account view asks the bank (GetMyAccount).
-- NULL for a link activated before this column: its activation time.
ALTER TABLE card_links ADD COLUMN terms_at_ms BIGINT;
