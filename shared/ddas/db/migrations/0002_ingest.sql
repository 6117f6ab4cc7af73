-- Ingest (services/ingest): suppliers, organisations and their rights, tokens (hashed), the
-- delivery's organisations and contact e-mails, the audit log, and what ingest adds to
-- leveringen and the outbox.

-- A supplier (gegevensleverancier): a software vendor or a municipality that delivers.
CREATE TABLE leveranciers (
    code           text        PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    naam           text        NOT NULL,
    aangemaakt_op  timestamptz NOT NULL DEFAULT now()
);

-- What a supplier may deliver for: an organisation by its KvK number (8 digits), or a
-- municipality by its gemeentecode (4 digits). A levering's aanleverende_organisatie is matched
-- by its KvK-nummer or its gemeentecode.
CREATE TABLE leverancier_rechten (
    leverancier  text NOT NULL REFERENCES leveranciers (code) ON DELETE CASCADE,
    organisatie  text NOT NULL CHECK (organisatie ~ '^([0-9]{8}|[0-9]{4})$'),
    PRIMARY KEY (leverancier, organisatie)
);

-- Bearer tokens, stored as the SHA-256 (hex) of the token; the token itself is shown once. A
-- token belongs to a supplier (delivers, reads its deliveries) or to an organisation (reads the
-- deliveries made for it).
CREATE TABLE tokens (
    token_hash      text        PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    leverancier     text        REFERENCES leveranciers (code) ON DELETE CASCADE,
    organisatie     text        CHECK (organisatie ~ '^([0-9]{8}|[0-9]{4})$'),
    omschrijving    text        NOT NULL DEFAULT '',
    aangemaakt_op   timestamptz NOT NULL DEFAULT now(),
    ingetrokken_op  timestamptz,
    CONSTRAINT tokens_eigenaar_check CHECK ((leverancier IS NULL) <> (organisatie IS NULL))
);

-- The delivery as ingest received it. The same bytes from the same supplier are one delivery:
-- the content hash is unique per supplier (a different supplier's identical file is its own;
-- rows without a supplier, made by hand or by tests, still share one namespace: NULLS NOT
-- DISTINCT, PostgreSQL 15 or newer).
ALTER TABLE leveringen
    ADD COLUMN leverancier      text REFERENCES leveranciers (code),
    ADD COLUMN ontvangen_via    text CHECK (ontvangen_via IN ('http', 'kafka')),
    ADD COLUMN bytes            bigint CHECK (bytes >= 0),
    ADD COLUMN trajecten        integer CHECK (trajecten >= 0),
    ADD COLUMN chunks           integer CHECK (chunks >= 1);
ALTER TABLE leveringen DROP CONSTRAINT leveringen_content_hash_key;
-- A delivery whose period is missing, not a date or reversed is still received (its findings
-- say so, and validate rejects it: `afgekeurd`); its period columns are then NULL or reversed.
ALTER TABLE leveringen
    ALTER COLUMN startdatum_levering DROP NOT NULL,
    ALTER COLUMN einddatum_levering DROP NOT NULL,
    DROP CONSTRAINT leveringen_periode_check;
CREATE UNIQUE INDEX leveringen_leverancier_content_hash
    ON leveringen (leverancier, content_hash) NULLS NOT DISTINCT;

-- Every organisation a delivery is for (one per levering in the file): these may read it.
CREATE TABLE levering_organisaties (
    levering_id  uuid NOT NULL REFERENCES leveringen (id) ON DELETE CASCADE,
    organisatie  text NOT NULL,
    PRIMARY KEY (levering_id, organisatie)
);

-- The contact persons' e-mail addresses of each levering, for the OOR notifications. Kept here
-- and nowhere else (the chunks carry placeholders); they are not personal data of clients.
CREATE TABLE levering_contacten (
    levering_id     uuid    NOT NULL REFERENCES leveringen (id) ON DELETE CASCADE,
    levering_index  integer NOT NULL CHECK (levering_index >= 0),
    email           text    NOT NULL,
    PRIMARY KEY (levering_id, levering_index, email)
);

-- Ingest's view of each delivery's progress, from the lifecycle events on ddas.leveringen.v1
-- (validate -> report -> publish): the latest state and its findings summary, for
-- GET /v1/leveringen/{id}. Ingest reads no other service's tables.
CREATE TABLE levering_status (
    levering_id  uuid        PRIMARY KEY REFERENCES leveringen (id) ON DELETE CASCADE,
    state        text        NOT NULL,
    bevindingen  jsonb       NOT NULL,
    occurred_at  timestamptz NOT NULL,
    event_id     uuid        NOT NULL
);

-- The audit log: every state change, every decision and every refused attempt. `actor` is who
-- acted ("leverancier:<code>", "organisatie:<code>", "service:<name>", "anoniem"), `actie`
-- what was attempted ("levering.aangeboden", "levering.gevalideerd", ...), `uitkomst` how it
-- ended ("ok", "geweigerd", "dubbel", ...). `details` never holds personal data.
CREATE TABLE audit_log (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    actie        text        NOT NULL,
    levering_id  uuid,
    uitkomst     text        NOT NULL DEFAULT 'ok',
    details      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_levering ON audit_log (levering_id, at) WHERE levering_id IS NOT NULL;
CREATE INDEX audit_log_at ON audit_log (at);

-- Outbox rows may carry their message as bytes (`body`: the chunks, several MB of JSON each,
-- which jsonb would parse and re-serialise for nothing) instead of as jsonb (`payload`). The
-- relay drops a published row's body (the message is in Kafka; the row stays as its record).
ALTER TABLE outbox
    ALTER COLUMN payload DROP NOT NULL,
    ADD COLUMN body bytea,
    ADD CONSTRAINT outbox_bericht_check
        CHECK (published_at IS NOT NULL OR (payload IS NULL) <> (body IS NULL));
