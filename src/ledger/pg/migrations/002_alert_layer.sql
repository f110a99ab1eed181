-- PostgreSQL counterpart of SQLite migration 002 (the alert layer, SPEC
-- §11). PostgreSQL changes a CHECK constraint in place: no table rebuild.
ALTER TABLE alerts
    ADD COLUMN fingerprint        text,                        -- SHA-256 of what the key stands for
    ADD COLUMN thread_id          text,                        -- id of the thread's first message
    ADD COLUMN transports         jsonb NOT NULL DEFAULT '{}', -- channel id → transport kind at planning
    ADD COLUMN creator            text NOT NULL DEFAULT '',    -- OS user who created it (two-person rule)
    ADD COLUMN approval_deadline  timestamptz,                 -- set while awaiting approval
    ADD COLUMN decided_by         text;                        -- OS user who approved or rejected it

UPDATE alerts SET thread_id = COALESCE(refs ->> 0, id), creator = operator;
ALTER TABLE alerts ALTER COLUMN thread_id SET NOT NULL;

ALTER TABLE alerts DROP CONSTRAINT alerts_state_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_state_check
    CHECK (state IN ('awaiting_approval', 'sending', 'paused', 'settled', 'cancelled', 'rejected'));

CREATE INDEX alerts_thread ON alerts (thread_id);
CREATE INDEX alerts_state ON alerts (state);

-- true when the recipient is outside [drill] audience (default for older
-- rows: ask, as for the public).
ALTER TABLE deliveries ADD COLUMN outside_drill boolean NOT NULL DEFAULT true;

-- Each audit row: SHA-256 of the previous row's hash and its own content.
ALTER TABLE audit ADD COLUMN prev_hash text, ADD COLUMN hash text;
