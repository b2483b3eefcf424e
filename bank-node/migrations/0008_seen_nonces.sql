-- The nonces of signed interbank calls this institution accepted (docs/security.md), kept for
-- the 300-second window in which a replay would still pass the timestamp check. Every process
-- of the institution shares them, so a call replayed to another process is refused too.
CREATE TABLE seen_nonces (
    signer TEXT NOT NULL,
    nonce TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (signer, nonce)
);
CREATE INDEX seen_nonces_by_time ON seen_nonces (at_ms);
