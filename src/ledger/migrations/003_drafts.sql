-- Drafts from official bulletins (SPEC §16): what `allerta watch` proposes
-- to the officers, and what each source last said about the comune, so the
-- same bulletin never makes two drafts and a raised level makes a new one.

CREATE TABLE drafts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,             -- [[watch.source]] name
    subject     TEXT NOT NULL,             -- the comune (dpc) or the area (cap)
    day         TEXT NOT NULL,             -- YYYY-MM-DD the bulletin is for
    levels      TEXT NOT NULL,             -- JSON object: risk → level, as read
    template    TEXT NOT NULL,
    variables   TEXT NOT NULL,             -- JSON object
    audience    TEXT NOT NULL,             -- JSON array: "zone:…", "group:…", "all"
    cancels     TEXT,                      -- cessata-allerta drafts: the alert they end
    text        TEXT NOT NULL,             -- rendered text shown to the officers
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sent', 'discarded')),
    alert_id    TEXT,                      -- the alert `send --draft` created
    created_at  TEXT NOT NULL,             -- RFC 3339
    decided_at  TEXT,
    decided_by  TEXT
);

CREATE INDEX drafts_by_bulletin ON drafts (source, subject, day);

CREATE TABLE watch_state (
    source      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    day         TEXT NOT NULL,
    levels      TEXT NOT NULL,             -- JSON object: risk → level (only risks with a level)
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (source, subject, day)
);
