-- PostgreSQL counterpart of SQLite migration 006: voice calls and the
-- escalation ladder (SPEC §14). A held delivery is `pending` with
-- `held_until` set and `next_attempt_at` far in the future.
ALTER TABLE deliveries
    ADD COLUMN escalation_step bigint,   -- NULL: first round; N: step N (1-based)
    ADD COLUMN held_until bigint;        -- ms; NULL: not held
CREATE INDEX deliveries_held ON deliveries (alert_id, held_until) WHERE held_until IS NOT NULL;
CREATE INDEX deliveries_recipient ON deliveries (recipient) WHERE acknowledged_at IS NOT NULL;

-- Every call placed, by the provider's call id, recorded the moment the
-- provider answers the request. `rowid` stands for SQLite's implicit one
-- (calls placed in the same millisecond keep their order).
CREATE TABLE voice_calls (
    sid          text COLLATE "C" PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES deliveries (id),
    placed_at    bigint NOT NULL,            -- ms
    status       text COLLATE "C",           -- last CallStatus heard (callback or lookup)
    answered_by  text COLLATE "C",
    updated_at   bigint NOT NULL,
    closed       bigint NOT NULL DEFAULT 0,  -- 1: of an earlier round (`retry` gives a fresh one)
    rowid        bigint GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX voice_calls_delivery ON voice_calls (delivery_id);
