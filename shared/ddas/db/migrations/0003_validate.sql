-- Validate (services/validate): per-trajectory facts, findings, the bookkeeping that tells when
-- every chunk of a delivery is stored, and the outcome (the two DDAS-app tables, a findings
-- summary). Everything here is pseudonymised: a BSN is its keyed HMAC (docs/pipeline.md).

-- One row per delivery being validated. `klaar` counts the stored chunks; the chunk transaction
-- that makes it equal to `chunks` holds this row's lock and completes the delivery (the
-- cross-trajectory rules and the tables over the stored facts), exactly once.
CREATE TABLE validatie (
    levering_id   uuid        PRIMARY KEY REFERENCES leveringen (id) ON DELETE CASCADE,
    chunks        integer     NOT NULL CHECK (chunks >= 1),
    klaar         integer     NOT NULL DEFAULT 0,
    -- The pseudonymised root header (without leveringen), as chunk headers carry it.
    root          jsonb       NOT NULL,
    begonnen_op   timestamptz NOT NULL DEFAULT now(),
    -- Set by the completion:
    voltooid_op   timestamptz,
    uitkomst      text        CHECK (uitkomst IN ('gevalideerd', 'afgekeurd')),
    -- Why it was rejected: periode_ongeldig, periode_omgedraaid, geen_trajecten.
    afkeuring     text,
    periode_start text,
    periode_eind  text,
    -- Totalen.as_dict(): {"gemeenten": [...], "totaal": {...}} (the DDAS-app's two tables).
    tabellen      jsonb,
    -- {"fouten": n, "waarschuwingen": n, "per_code": {code: n}}
    samenvatting  jsonb,
    CONSTRAINT validatie_klaar_check CHECK (klaar BETWEEN 0 AND chunks),
    CONSTRAINT validatie_voltooid_check CHECK ((uitkomst IS NULL) = (voltooid_op IS NULL))
);

-- The chunks stored so far: a chunk delivered twice (even under another event id) is stored once.
CREATE TABLE validatie_chunks (
    levering_id     uuid        NOT NULL REFERENCES leveringen (id) ON DELETE CASCADE,
    chunk           integer     NOT NULL CHECK (chunk >= 0),
    event_id        uuid        NOT NULL,
    -- Where the chunk lies in the file: its levering, and its first trajectory's index.
    levering_index  integer     NOT NULL,
    eerste          integer     NOT NULL,
    trajecten       integer     NOT NULL,
    -- The completion's input for this chunk's trajectories, compact (MessagePack; see
    -- services/validate/chunks.py, KortFeit): the same facts as its traject_feiten rows, read
    -- back as one value per chunk rather than a row per trajectory.
    feiten          bytea       NOT NULL,
    opgeslagen_op   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (levering_id, chunk)
);

-- The pseudonymised levering headers (without schuldhulptrajecten), stored by the chunk that
-- starts each levering: the rules on the leveringen run at completion, over all of them.
CREATE TABLE validatie_leveringen (
    levering_id     uuid    NOT NULL REFERENCES leveringen (id) ON DELETE CASCADE,
    levering_index  integer NOT NULL CHECK (levering_index >= 0),
    kop             jsonb   NOT NULL,
    PRIMARY KEY (levering_id, levering_index)
);

-- One row per trajectory (that is a JSON object): its table facts and the pseudonymised
-- trajectory itself, for the report's figures. File order is (levering_index, traject_index).
-- (What the cross-trajectory rules keep of it, ddas.domain.rules.RegelFeit, is only needed by the
-- completion and is in validatie_chunks.feiten.)
CREATE TABLE traject_feiten (
    levering_id     uuid    NOT NULL REFERENCES leveringen (id) ON DELETE CASCADE,
    levering_index  integer NOT NULL,
    traject_index   integer NOT NULL,
    pointer         text    GENERATED ALWAYS AS (
        '/leveringen/' || levering_index || '/schuldhulptrajecten/' || traject_index
    ) STORED,
    -- ddas.domain.tables.TrajectFeit: the row it counts in (NULL: the app's onbekend* row), its
    -- clients' BSN pseudonyms, active in the period, its most recent step in the period.
    gemeentecode    text,
    bsns            text[]  NOT NULL,
    actief          boolean NOT NULL,
    laatste_stap    text,
    laatste_datum   text,
    -- The pseudonymised trajectory's own JSON text. json rather than jsonb: validated but not
    -- converted on the way in, which halves the cost of storing 200,000 of them; a query that
    -- wants jsonb's operators or indexes casts (traject::jsonb).
    traject         json    NOT NULL,
    PRIMARY KEY (levering_id, levering_index, traject_index)
);

-- Every finding of the schema and the rules. (fase, levering_index, traject_index, volgnummer)
-- orders them as `ddas check` lists them: fase 0 schema, 1 rules, 2 rules across trajectories;
-- -1 as levering index is the root, as trajectory index a levering header.
CREATE TABLE bevindingen (
    levering_id     uuid     NOT NULL REFERENCES leveringen (id) ON DELETE CASCADE,
    fase            smallint NOT NULL CHECK (fase IN (0, 1, 2)),
    levering_index  integer  NOT NULL,
    traject_index   integer  NOT NULL,
    volgnummer      integer  NOT NULL,
    code            text     NOT NULL,
    ernst           text     NOT NULL CHECK (ernst IN ('fout', 'waarschuwing')),
    pointer         text     NOT NULL,
    message         text     NOT NULL,
    PRIMARY KEY (levering_id, fase, levering_index, traject_index, volgnummer)
);
