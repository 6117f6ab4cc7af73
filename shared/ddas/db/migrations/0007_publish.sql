-- Publish (services/publish): what publish knows of each delivery's report, the figures each
-- published delivery contributes, and the published, disclosure-protected statistics.
-- Aggregates only: no pseudonym, no personal value, in any of these tables.

-- The OOR figures of a delivery, from its `Rapport` on ddas.rapporten.v1 (the newest version
-- wins). Removed when the delivery is withdrawn.
CREATE TABLE publicatie_rapporten (
    levering_id   uuid        PRIMARY KEY REFERENCES leveringen (id) ON DELETE CASCADE,
    versie        integer     NOT NULL CHECK (versie >= 1),
    event_id      uuid        NOT NULL,
    oor           jsonb       NOT NULL,
    ontvangen_op  timestamptz NOT NULL DEFAULT now()
);

-- The exact (unprotected) figures a published delivery adds to one municipality and period,
-- written in the transaction that moves it to `gepubliceerd`. Never served: the statistics
-- below are computed from these. `vervangen_door`: a newer delivery of the same organisation,
-- soort and period was published and its figures replace these.
CREATE TABLE publicatie_bijdragen (
    levering_id     uuid    NOT NULL REFERENCES leveringen (id) ON DELETE CASCADE,
    gemeentecode    text    NOT NULL,
    periode_start   date    NOT NULL,
    periode_eind    date    NOT NULL,
    cijfers         jsonb   NOT NULL,
    vervangen_door  uuid    REFERENCES leveringen (id),
    PRIMARY KEY (levering_id, gemeentecode)
);
CREATE INDEX publicatie_bijdragen_periode
    ON publicatie_bijdragen (periode_start, periode_eind) WHERE vervangen_door IS NULL;

-- Each (re)publication of a period's statistics: a new version whenever a delivery for the
-- period is published.
CREATE TABLE statistiek_versies (
    periode_start    date        NOT NULL,
    periode_eind     date        NOT NULL,
    versie           integer     NOT NULL CHECK (versie >= 1),
    aanleiding       uuid        NOT NULL REFERENCES leveringen (id),
    event_id         uuid        NOT NULL UNIQUE,
    gepubliceerd_op  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (periode_start, periode_eind, versie)
);

-- The published statistics: the current version of each period, one row per cell
-- (gemeentecode 'totaal' is the sum over the municipalities). `waarde` is NULL when the cell
-- is not published; `status` says why (ddas.domain.disclosure).
CREATE TABLE statistieken (
    periode_start  date    NOT NULL,
    periode_eind   date    NOT NULL,
    gemeentecode   text    NOT NULL,
    tabel          text    NOT NULL,
    kolom          text    NOT NULL,
    waarde         numeric,
    status         text    NOT NULL CHECK (status IN (
        'gepubliceerd', 'onderdrukt', 'onderdrukt_complementair', 'basis_te_klein')),
    versie         integer NOT NULL,
    PRIMARY KEY (periode_start, periode_eind, gemeentecode, tabel, kolom),
    CONSTRAINT statistieken_waarde_check CHECK ((waarde IS NULL) <> (status = 'gepubliceerd'))
);
