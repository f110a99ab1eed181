-- Counterpart of SQLite's migration 008: send slots shared by every worker
-- of the deployment, so a channel's rate_per_second holds for all of them.
CREATE TABLE rate_slots (
    channel  text COLLATE "C" PRIMARY KEY,
    next_at  bigint NOT NULL          -- µs since the epoch: the next free slot
);
