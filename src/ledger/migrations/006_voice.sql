-- Voice calls and the escalation ladder (SPEC §14).
--
-- A delivery can be *held*: planned, `pending`, but not to be claimed
-- before `held_until` (ms since epoch) and only after `resume` released
-- it (its recipient acknowledged nothing meanwhile). While held its
-- `next_attempt_at` is far in the future, so no claim takes it; release
-- sets `held_until` back to NULL. Escalation steps are held from planning;
-- a voice call that was busy or unanswered is held until its next try.
ALTER TABLE deliveries ADD COLUMN escalation_step INTEGER;   -- NULL: first round; N: step N (1-based)
ALTER TABLE deliveries ADD COLUMN held_until INTEGER;        -- ms; NULL: not held
CREATE INDEX deliveries_held ON deliveries (alert_id, held_until) WHERE held_until IS NOT NULL;
CREATE INDEX deliveries_recipient ON deliveries (recipient) WHERE acknowledged_at IS NOT NULL;

-- Every call placed, by the provider's call id, recorded the moment the
-- provider answers the request (before anything else), so a retry after a
-- crash asks the provider about that call instead of calling again.
CREATE TABLE voice_calls (
    sid          TEXT PRIMARY KEY,
    delivery_id  INTEGER NOT NULL REFERENCES deliveries (id),
    placed_at    INTEGER NOT NULL,            -- ms
    status       TEXT,                        -- last CallStatus heard (callback or lookup)
    answered_by  TEXT,
    updated_at   INTEGER NOT NULL,
    closed       INTEGER NOT NULL DEFAULT 0   -- 1: of an earlier round (`retry` gives a fresh one)
);
CREATE INDEX voice_calls_delivery ON voice_calls (delivery_id);
