-- A channel's rate for the whole deployment (SPEC §18): every worker that
-- claims deliveries of a paced channel reserves their send slots here, one
-- every 1/rate seconds after the last slot anyone reserved (or now, if that
-- is in the past: idle time is never saved up for a burst). Only
-- PostgreSQL's workers use it; on SQLite one process sends an alert and
-- paces it itself. PostgreSQL's migration 008 is the same change.
CREATE TABLE rate_slots (
    channel  TEXT PRIMARY KEY,
    next_at  INTEGER NOT NULL          -- µs since the epoch: the next free slot
);
