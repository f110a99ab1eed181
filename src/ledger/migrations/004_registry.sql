-- The contact registry: the contact files as last validated, one row per
-- contact and one per (contact, channel address), so `send` plans its whole
-- audience with one INSERT … SELECT instead of parsing and validating every
-- row in front of the first message (SPEC §10). Rebuilt whenever the files
-- (or the settings that judge them) change: `fingerprint` says of what.
CREATE TABLE registry_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint  TEXT NOT NULL,
    built_at     TEXT NOT NULL
);

CREATE TABLE registry_contacts (
    row         INTEGER PRIMARY KEY,   -- file order
    contact_id  TEXT NOT NULL,
    language    TEXT                   -- NULL: general.default_language
);

CREATE TABLE registry_addresses (
    seq      INTEGER PRIMARY KEY,      -- file order, then channel order
    row      INTEGER NOT NULL REFERENCES registry_contacts (row),
    channel  TEXT NOT NULL,
    address  TEXT NOT NULL
);
CREATE INDEX registry_addresses_channel ON registry_addresses (channel, seq);

CREATE TABLE registry_zones (
    row   INTEGER NOT NULL REFERENCES registry_contacts (row),
    zone  TEXT NOT NULL,
    PRIMARY KEY (zone, row)
) WITHOUT ROWID;

CREATE TABLE registry_groups (
    row  INTEGER NOT NULL REFERENCES registry_contacts (row),
    grp  TEXT NOT NULL,
    PRIMARY KEY (grp, row)
) WITHOUT ROWID;

-- Rows the last validation found invalid (`file:line: reason`).
CREATE TABLE registry_problems (
    seq      INTEGER PRIMARY KEY,
    problem  TEXT NOT NULL
);
