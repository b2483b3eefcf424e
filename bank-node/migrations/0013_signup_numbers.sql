-- Sign-ups are numbered: an id is `SU`, the business date and the next value of this counter in
-- 10 digits. They were 10 random digits, which at a load tester's hundred thousand sign-ups a day
-- were likely to repeat, and the second insert was refused as if the card were signed up. A
-- database kept from before holds random ids; a number one of them holds is skipped
-- (`Bank::sign_up`).
INSERT INTO counters (name, value) VALUES ('signup', 0);
