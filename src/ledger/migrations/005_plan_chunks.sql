-- Planning in chunks (SPEC §10, first message): a send plans its first
-- registry addresses in the alert's own transaction and records here what
-- is left to plan; the rest is planned in idempotent chunks (each moves the
-- cursor in the same transaction as its rows) while the first messages are
-- already out. `resume` finishes an interrupted planning; a follow-up, an
-- approval or a registry rebuild completes it before acting. No row: the
-- alert is fully planned.
CREATE TABLE plan_pending (
    alert_id  TEXT PRIMARY KEY REFERENCES alerts (id),
    next_seq  INTEGER NOT NULL,   -- first registry_addresses.seq not planned yet
    last_seq  INTEGER NOT NULL,   -- the registry's last seq when planned
    spec      TEXT NOT NULL       -- JSON: channels, audience, drill audience, default language
);

-- A subscriber is planned only when no registry contact in the audience
-- gives the same chat id (the contact keeps it, as when planned at once).
CREATE INDEX registry_addresses_address ON registry_addresses (channel, address);
