-- PostgreSQL counterpart of SQLite migration 005: planning in chunks
-- (SPEC §10). No row: the alert is fully planned.
CREATE TABLE plan_pending (
    alert_id  text PRIMARY KEY REFERENCES alerts (id),
    next_seq  bigint NOT NULL,   -- first registry_addresses.seq not planned yet
    last_seq  bigint NOT NULL,   -- the registry's last seq when planned
    spec      jsonb NOT NULL     -- channels, audience, drill audience, default language
);

CREATE INDEX registry_addresses_address ON registry_addresses (channel, address);
