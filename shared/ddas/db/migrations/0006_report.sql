-- Report (services/report) and notifications (ddas.notify): the op-orde-rapport of each
-- delivery, the organisations' webhooks, and the notifications to send. Nothing here is
-- personal data of clients: the OOR holds counts only.

-- The OOR of a delivery as JSON (services/report/README.md describes its shape). `versie`
-- numbers the reports of one delivery from 1 (a report is never changed, a new one is added);
-- `formaat` is the version of the JSON shape. The latest versie is the report. json rather
-- than jsonb: the members keep their order (the phases in process order), as the API serves it.
CREATE TABLE rapporten (
    levering_id  uuid        NOT NULL REFERENCES leveringen (id) ON DELETE CASCADE,
    versie       integer     NOT NULL CHECK (versie >= 1),
    formaat      integer     NOT NULL,
    oor          json        NOT NULL,
    gemaakt_op   timestamptz NOT NULL DEFAULT now(),
    -- How long building it took (seconds), for the benchmark and the operators.
    duur_s       double precision,
    PRIMARY KEY (levering_id, versie)
);

-- An organisation's webhooks (`ddas webhook add ORG URL`). The secret signs the POSTs
-- (Standard Webhooks, whsec_<base64>); it is shown once when made and kept here to sign with.
CREATE TABLE webhooks (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisatie    text        NOT NULL CHECK (organisatie ~ '^([0-9]{8}|[0-9]{4})$'),
    url            text        NOT NULL CHECK (url ~ '^https?://'),
    secret         text        NOT NULL CHECK (secret LIKE 'whsec\_%'),
    actief         boolean     NOT NULL DEFAULT true,
    aangemaakt_op  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_organisatie ON webhooks (organisatie) WHERE actief;

-- One row per notification per recipient, written in the transaction of the change it tells
-- about (a transactional outbox of its own) and sent by ddas.notify.Sender: claimed with
-- FOR UPDATE SKIP LOCKED under a lease, sent, then `verzonden`, or due again after a capped
-- backoff, or `mislukt` with the reason after `max_attempts`. `bericht_id` is fixed per row:
-- the webhook-id header and the e-mail's Message-ID, so that a resend after a crash carries the
-- same id and the receiver can deduplicate.
CREATE TABLE notificaties (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    levering_id      uuid        NOT NULL REFERENCES leveringen (id) ON DELETE CASCADE,
    soort            text        NOT NULL,
    kanaal           text        NOT NULL CHECK (kanaal IN ('email', 'webhook')),
    -- the e-mail address, or the webhook's URL (as it was when the row was made)
    ontvanger        text        NOT NULL,
    webhook          bigint      REFERENCES webhooks (id) ON DELETE SET NULL,
    bericht_id       text        NOT NULL UNIQUE,
    onderwerp        text        NOT NULL,
    tekst            text        NOT NULL,
    -- the webhook's JSON body, byte for byte as it is signed and sent (fixed per row)
    body             text,
    status           text        NOT NULL DEFAULT 'wachtend'
                                 CHECK (status IN ('wachtend', 'verzonden', 'mislukt')),
    pogingen         integer     NOT NULL DEFAULT 0 CHECK (pogingen >= 0),
    volgende_poging  timestamptz NOT NULL DEFAULT now(),
    lease_token      uuid,
    leased_until     timestamptz,
    laatste_fout     text,
    aangemaakt_op    timestamptz NOT NULL DEFAULT now(),
    verzonden_op     timestamptz,
    CONSTRAINT notificaties_body_check CHECK ((kanaal = 'webhook') = (body IS NOT NULL))
);
CREATE INDEX notificaties_due ON notificaties (volgende_poging, id) WHERE status = 'wachtend';
CREATE INDEX notificaties_levering ON notificaties (levering_id);
