-- PostgreSQL counterpart of SQLite migration 002 (the alert layer, SPEC
-- §11). SQLite rebuilds the alerts table to change its state CHECK;
-- PostgreSQL adds the columns and replaces the constraint in place (the
-- new columns come last, SQLite's rebuild puts them in between: the code
-- names every column it reads or writes).
ALTER TABLE alerts
    ADD COLUMN fingerprint        text COLLATE "C",                    -- SHA-256 of what the key stands for
    ADD COLUMN thread_id          text COLLATE "C",                    -- id of the thread's first message
    ADD COLUMN transports         text COLLATE "C" NOT NULL DEFAULT '{}', -- JSON: channel id → transport kind at planning
    ADD COLUMN creator            text COLLATE "C" NOT NULL DEFAULT '', -- OS user who created it (two-person rule)
    ADD COLUMN approval_deadline  text COLLATE "C",                    -- RFC 3339; set while awaiting approval
    ADD COLUMN decided_by         text COLLATE "C";                    -- OS user who approved or rejected it

-- As SQLite's rebuild: a thread is named by its first reference, else the
-- alert itself; the creator of an older alert is its operator.
UPDATE alerts SET thread_id = COALESCE(refs::jsonb ->> 0, id), creator = operator;
ALTER TABLE alerts ALTER COLUMN thread_id SET NOT NULL;

ALTER TABLE alerts DROP CONSTRAINT alerts_state_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_state_check
    CHECK (state IN ('awaiting_approval', 'sending', 'paused', 'settled', 'cancelled', 'rejected'));

CREATE INDEX alerts_thread ON alerts (thread_id);
CREATE INDEX alerts_state ON alerts (state);

-- 1 when the recipient is outside [drill] audience (default for older
-- rows: ask, as for the public).
ALTER TABLE deliveries ADD COLUMN outside_drill bigint NOT NULL DEFAULT 1;

-- Each audit row: SHA-256 of the previous row's hash and its own content.
ALTER TABLE audit ADD COLUMN prev_hash text COLLATE "C", ADD COLUMN hash text COLLATE "C";
