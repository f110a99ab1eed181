-- The alert layer (SPEC §11): more alert states, the idempotency key's
-- fingerprint, threads, the transports an alert was planned on, the
-- two-person rule, per-delivery reach beyond the drill audience, and the
-- hash chain of the audit trail.
--
-- SQLite cannot change a CHECK constraint in place: the alerts table is
-- rebuilt (`Ledger::open` migrates before it turns foreign keys on, as
-- SQLite's documented procedure for schema changes requires).

CREATE TABLE alerts_v2 (
    id                 TEXT PRIMARY KEY,
    idem_key           TEXT UNIQUE,
    fingerprint        TEXT,                   -- SHA-256 of what the key stands for
    thread_id          TEXT NOT NULL,          -- id of the thread's first message
    template           TEXT NOT NULL,
    variables          TEXT NOT NULL,          -- JSON object
    status             TEXT NOT NULL CHECK (status IN ('Actual', 'Exercise', 'Test')),
    msg_type           TEXT NOT NULL CHECK (msg_type IN ('Alert', 'Update', 'Cancel')),
    refs               TEXT NOT NULL DEFAULT '[]', -- JSON array of referenced alert ids
    audience           TEXT NOT NULL,          -- JSON
    channels           TEXT NOT NULL,          -- JSON array of channel ids
    transports         TEXT NOT NULL DEFAULT '{}', -- JSON: channel id → transport kind at planning
    rendered           TEXT NOT NULL,          -- JSON: every channel's text per language
    headline           TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'sending'
                       CHECK (state IN ('awaiting_approval', 'sending', 'paused', 'settled', 'cancelled', 'rejected')),
    created_at         TEXT NOT NULL,          -- RFC 3339
    expires_at         TEXT,
    settled_at         TEXT,
    operator           TEXT NOT NULL,
    host               TEXT NOT NULL,
    creator            TEXT NOT NULL DEFAULT '', -- OS user who created it (two-person rule)
    approval_deadline  TEXT,                   -- RFC 3339; set while awaiting approval
    decided_by         TEXT,                   -- OS user who approved or rejected it
    skipped_rows       TEXT NOT NULL DEFAULT '[]', -- contact rows left out by --skip-invalid
    lease_owner        TEXT,
    lease_until        INTEGER
);

INSERT INTO alerts_v2 (id, idem_key, thread_id, template, variables, status, msg_type, refs, audience,
                       channels, rendered, headline, state, created_at, expires_at, settled_at,
                       operator, host, creator, skipped_rows, lease_owner, lease_until)
SELECT id, idem_key,
       COALESCE((SELECT value FROM json_each(alerts.refs) LIMIT 1), id),
       template, variables, status, msg_type, refs, audience,
       channels, rendered, headline, state, created_at, expires_at, settled_at,
       operator, host, operator, skipped_rows, lease_owner, lease_until
FROM alerts;

DROP TABLE alerts;
ALTER TABLE alerts_v2 RENAME TO alerts;
CREATE INDEX alerts_thread ON alerts (thread_id);
CREATE INDEX alerts_state ON alerts (state);

-- 1 when the recipient is outside [drill] audience (default for older
-- rows: ask, as for the public).
ALTER TABLE deliveries ADD COLUMN outside_drill INTEGER NOT NULL DEFAULT 1;

-- Each audit row: SHA-256 of the previous row's hash and its own content.
ALTER TABLE audit ADD COLUMN prev_hash TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;
