-- The collector (services/ingest/collect): periodic collection over the suppliers' DDAS pull
-- API (DDAS-SHV.yaml). A run fetches one period from one supplier endpoint page by page; every
-- verified page is kept (encrypted) until the run has handed the assembled delivery to intake,
-- so that a run that crashed resumes from the last completed page.

-- A delivery may also come in by collection.
ALTER TABLE leveringen DROP CONSTRAINT leveringen_ontvangen_via_check;
ALTER TABLE leveringen
    ADD CONSTRAINT leveringen_ontvangen_via_check
        CHECK (ontvangen_via IN ('http', 'kafka', 'pull'));

-- One collection run: an endpoint (named in the collector's configuration), the supplier it
-- delivers as, a period and a page size. `bezig` until it ends `voltooid` (with the delivery it
-- gave) or `mislukt` (a page refused, a request refused: the reason's stable code and a Dutch
-- detail, never personal data). `onderbroken`: the endpoint stayed unreachable; the pages so
-- far are kept and the next attempt resumes, as after a crash (which leaves it `bezig`).
CREATE TABLE collect_runs (
    id              uuid        PRIMARY KEY,
    endpoint        text        NOT NULL,
    leverancier     text        NOT NULL,
    periode_start   date        NOT NULL,
    periode_eind    date        NOT NULL CHECK (periode_eind >= periode_start),
    page_size       integer     NOT NULL CHECK (page_size BETWEEN 1 AND 25000),
    state           text        NOT NULL DEFAULT 'bezig'
                                CHECK (state IN ('bezig', 'onderbroken', 'voltooid', 'mislukt')),
    pages_total     integer     CHECK (pages_total >= 1),
    pages_done      integer     NOT NULL DEFAULT 0 CHECK (pages_done >= 0),
    records_total   integer     CHECK (records_total >= 0),
    levering_id     uuid        REFERENCES leveringen (id),
    reden           text,
    detail          text,
    gestart_op      timestamptz NOT NULL DEFAULT now(),
    bijgewerkt_op   timestamptz NOT NULL DEFAULT now(),
    geeindigd_op    timestamptz
);
-- At most one unfinished run per endpoint and period: a restarted collector resumes it.
CREATE UNIQUE INDEX collect_runs_bezig
    ON collect_runs (endpoint, periode_start, periode_eind) WHERE state IN ('bezig', 'onderbroken');
CREATE INDEX collect_runs_endpoint ON collect_runs (endpoint, gestart_op DESC);

-- The verified pages of an unfinished run: the page body (raw supplier data, so encrypted with
-- AES-256-GCM under a key derived from the pseudonym key; never stored in the clear), its
-- digest as the supplier sent it, and its number of records. Deleted when the run ends.
CREATE TABLE collect_pages (
    run_id      uuid        NOT NULL REFERENCES collect_runs (id) ON DELETE CASCADE,
    page        integer     NOT NULL CHECK (page >= 1),
    nonce       bytea       NOT NULL,
    ciphertext  bytea       NOT NULL,
    digest      text        NOT NULL,
    records     integer     NOT NULL CHECK (records >= 0),
    opgehaald_op timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, page)
);

-- The health of each endpoint: consecutive failed runs; unhealthy from the configured
-- threshold on, healthy again after a completed run.
CREATE TABLE collect_endpoints (
    endpoint              text        PRIMARY KEY,
    leverancier           text        NOT NULL,
    gezond                boolean     NOT NULL DEFAULT true,
    opeenvolgende_fouten  integer     NOT NULL DEFAULT 0 CHECK (opeenvolgende_fouten >= 0),
    laatste_succes        timestamptz,
    laatste_fout          timestamptz,
    laatste_reden         text,
    volgende_poging       timestamptz
);
