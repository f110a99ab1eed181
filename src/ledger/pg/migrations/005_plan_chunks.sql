-- PostgreSQL counterpart of SQLite migration 005: planning in chunks
-- (SPEC §10). No row: the alert is fully planned. `rowid` stands for
-- SQLite's implicit one (the code resumes plans in the order they began).
CREATE TABLE plan_pending (
    alert_id  text COLLATE "C" PRIMARY KEY REFERENCES alerts (id),
    next_seq  bigint NOT NULL,   -- first registry_addresses.seq not planned yet
    last_seq  bigint NOT NULL,   -- the registry's last seq when planned
    spec      text COLLATE "C" NOT NULL,  -- JSON: channels, audience, drill audience, default language
    rowid     bigint GENERATED ALWAYS AS IDENTITY
);

-- A subscriber is planned only when no registry contact in the audience
-- gives the same chat id (the contact keeps it, as when planned at once).
CREATE INDEX registry_addresses_address ON registry_addresses (channel, address);
