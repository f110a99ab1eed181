-- Per-delivery leases (SPEC §18), PostgreSQL only for now: several
-- processes work one alert. A delivery in `sending` always has an owner
-- and an expiry (the database's clock, so the workers' clocks never
-- matter); once `lease_until` has passed another worker may take it over.
-- Every other state has no lease. The CHECK makes a settle that forgets to
-- release the lease, or a claim that forgets to take one, an error.
ALTER TABLE deliveries
    ADD COLUMN lease_owner text,
    ADD COLUMN lease_until timestamptz;
-- Rows left in `sending` by an older version (outcome unknown) get an
-- already expired lease: the first claim takes them over and re-sends.
UPDATE deliveries SET lease_owner = 'migration 7', lease_until = '-infinity' WHERE state = 'sending';
ALTER TABLE deliveries ADD CONSTRAINT deliveries_lease_check
    CHECK ((state = 'sending') = (lease_owner IS NOT NULL AND lease_until IS NOT NULL));
-- Take-over looks for expired leases of one alert and channel.
CREATE INDEX deliveries_leases ON deliveries (alert_id, channel, lease_until) WHERE state = 'sending';
-- Renewing a worker's leases finds its claims.
CREATE INDEX deliveries_lease_owner ON deliveries (lease_owner) WHERE state = 'sending';
