-- The node's business clock as the simulator last set it (one row, id 1), so that a restart
-- keeps the simulated day: frozen at `frozen_at_ms`, or (NULL) running at real time plus
-- `offset_ms`. No row: real time. A reset deletes it.
CREATE TABLE sim_clock (
    id BIGINT PRIMARY KEY,
    frozen_at_ms BIGINT,
    offset_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
