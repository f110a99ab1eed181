-- Alerts: one row per alert, with everything needed to resume or report it.
CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    idem_key      TEXT UNIQUE,
    template      TEXT NOT NULL,
    variables     TEXT NOT NULL,          -- JSON object
    status        TEXT NOT NULL CHECK (status IN ('Actual', 'Exercise', 'Test')),
    msg_type      TEXT NOT NULL CHECK (msg_type IN ('Alert', 'Update', 'Cancel')),
    refs          TEXT NOT NULL DEFAULT '[]', -- JSON array of referenced alert ids
    audience      TEXT NOT NULL,          -- JSON
    channels      TEXT NOT NULL,          -- JSON array of channel ids
    rendered      TEXT NOT NULL,          -- JSON: every channel's text per language
    headline      TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'sending' CHECK (state IN ('sending', 'settled', 'cancelled')),
    created_at    TEXT NOT NULL,          -- RFC 3339
    expires_at    TEXT,
    settled_at    TEXT,
    operator      TEXT NOT NULL,
    host          TEXT NOT NULL,
    skipped_rows  TEXT NOT NULL DEFAULT '[]', -- contact rows left out by --skip-invalid
    lease_owner   TEXT,
    lease_until   INTEGER
);

-- One row per (alert, channel, address); never deleted, only moved between states.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    alert_id         TEXT NOT NULL REFERENCES alerts (id),
    channel          TEXT NOT NULL,
    address          TEXT NOT NULL,
    recipient        TEXT,
    language         TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'sent', 'delivered', 'failed', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,   -- ms since epoch
    provider_id      TEXT,
    last_error       TEXT,
    updated_at       INTEGER NOT NULL,             -- ms since epoch
    acknowledged_at  INTEGER,
    token            TEXT NOT NULL,                -- per-delivery secret for unsubscribe/ack links
    UNIQUE (alert_id, channel, address)
);
CREATE INDEX deliveries_queue ON deliveries (alert_id, channel, state, id);
CREATE INDEX deliveries_provider ON deliveries (channel, provider_id);

-- Every attempt: when, outcome, provider id or error.
CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    delivery_id  INTEGER NOT NULL REFERENCES deliveries (id),
    at           INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    provider_id  TEXT,
    detail       TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

-- Who did what, when, from where.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    operator  TEXT NOT NULL,
    host      TEXT NOT NULL,
    command   TEXT NOT NULL,
    alert_id  TEXT,
    detail    TEXT NOT NULL DEFAULT '{}'
);

-- Citizens subscribed through the Telegram bot.
CREATE TABLE subscribers (
    chat_id     TEXT PRIMARY KEY,
    name        TEXT,
    zones       TEXT NOT NULL DEFAULT '',    -- ';'-separated zone ids
    language    TEXT NOT NULL DEFAULT 'it',
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
