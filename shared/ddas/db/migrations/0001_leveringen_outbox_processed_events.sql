-- The delivery lifecycle, the transactional outbox and the consumers' processed-event ids.
-- Unqualified names: the runner (ddas/db/migrate.py) sets search_path to the target schema and
-- wraps this file in one transaction. Later issues extend these tables in new files.

-- One delivery (levering) of one supplying organisation for one reporting period.
CREATE TABLE leveringen (
    id                        uuid        PRIMARY KEY,
    soort                     text        NOT NULL CHECK (soort IN ('shv', 'vs')),
    code_gegevensleverancier  text        NOT NULL,
    -- The aanleverende organisatie (KvK number, or gemeentecode when a municipality delivers).
    organisatie               text        NOT NULL,
    startdatum_levering       date        NOT NULL,
    einddatum_levering        date        NOT NULL,
    -- SHA-256 of the delivered content: the same upload twice is the same delivery.
    content_hash              text        NOT NULL UNIQUE,
    state                     text        NOT NULL DEFAULT 'ontvangen',
    vervangen_door            uuid        REFERENCES leveringen (id),
    ontvangen_op              timestamptz NOT NULL DEFAULT now(),
    bijgewerkt_op             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT leveringen_state_check CHECK (state IN (
        'ontvangen', 'gevalideerd', 'afgekeurd', 'rapport_gereed',
        'goedgekeurd', 'ingetrokken', 'gepubliceerd', 'vervangen'
    )),
    CONSTRAINT leveringen_periode_check CHECK (einddatum_levering >= startdatum_levering),
    -- Only a replaced delivery points at its successor, and a replaced one always does.
    CONSTRAINT leveringen_vervangen_check CHECK ((state = 'vervangen') = (vervangen_door IS NOT NULL))
);

-- "The same organisation delivers again for the same period" is looked up by these columns.
CREATE INDEX leveringen_organisatie_periode
    ON leveringen (organisatie, soort, startdatum_levering, einddatum_levering);

-- Events written in the same transaction as the state change that causes them, relayed to
-- Kafka by a relay that claims rows with FOR UPDATE SKIP LOCKED under a lease.
CREATE TABLE outbox (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    topic         text        NOT NULL,
    message_key   text,
    payload       jsonb       NOT NULL,
    headers       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    available_at  timestamptz NOT NULL DEFAULT now(),
    attempts      integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_token   uuid,
    leased_until  timestamptz,
    published_at  timestamptz,
    last_error    text
);

-- The relay's work queue: unpublished rows in order of availability.
CREATE INDEX outbox_pending ON outbox (available_at, id) WHERE published_at IS NULL;

-- Written in the same transaction as a handler's effects: a redelivered event finds its row and
-- becomes a no-op.
CREATE TABLE processed_events (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
