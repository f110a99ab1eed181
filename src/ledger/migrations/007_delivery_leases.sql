-- Per-delivery leases (SPEC §18): several processes may work one alert.
-- A claim sets `lease_owner` (the worker's id) and `lease_until` (ms since
-- the epoch) on the deliveries it moves to `sending`; once `lease_until`
-- has passed, another worker may take the delivery over. Settling checks
-- state and owner in the same statement. NULL: no per-delivery lease
-- (every state but `sending`; on SQLite, §11's one-sender-per-alert lease
-- on the alert covers its deliveries). PostgreSQL's migration 007 is the
-- same change.
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE deliveries ADD COLUMN lease_until INTEGER;   -- ms; NULL: no lease

-- Take-over looks for the expired claims of one alert and channel: only
-- rows in `sending` are in this index, so it stays as small as the
-- deliveries in flight.
CREATE INDEX deliveries_leases ON deliveries (alert_id, channel, lease_until)
    WHERE state = 'sending';
