-- PostgreSQL counterpart of SQLite migration 004: the contact registry,
-- so `send` plans its audience with one INSERT … SELECT (SPEC §10).
CREATE TABLE registry_state (
    id           integer PRIMARY KEY CONSTRAINT registry_state_single CHECK (id = 1),
    fingerprint  text NOT NULL,
    built_at     timestamptz NOT NULL
);

CREATE TABLE registry_contacts (
    "row"       bigint PRIMARY KEY,    -- file order
    contact_id  text NOT NULL,
    language    text                   -- NULL: general.default_language
);

CREATE TABLE registry_addresses (
    seq      bigint PRIMARY KEY,       -- file order, then channel order
    "row"    bigint NOT NULL REFERENCES registry_contacts ("row"),
    channel  text NOT NULL,
    address  text NOT NULL
);
CREATE INDEX registry_addresses_channel ON registry_addresses (channel, seq);

CREATE TABLE registry_zones (
    "row"  bigint NOT NULL REFERENCES registry_contacts ("row"),
    zone   text NOT NULL,
    PRIMARY KEY (zone, "row")
);

CREATE TABLE registry_groups (
    "row"  bigint NOT NULL REFERENCES registry_contacts ("row"),
    grp    text NOT NULL,
    PRIMARY KEY (grp, "row")
);

-- Rows the last validation found invalid (`file:line: reason`).
CREATE TABLE registry_problems (
    seq      bigint PRIMARY KEY,
    problem  text NOT NULL
);
