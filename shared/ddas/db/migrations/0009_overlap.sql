-- Ingest and validate overlap (docs/pipeline.md, "A submission"): ingest publishes a delivery's
-- chunks to Kafka while it is still pseudonymising, and records the delivery (its `leveringen`
-- row) only once every chunk is acknowledged. Validate checks and stores the chunks as they
-- arrive, possibly before that row exists: its rows are then staged under the delivery's id
-- (derived from the supplier, the content and ingest's settings, so that a retried submission
-- has the same id and chunk ids), and the delivery is completed only once the row exists. A
-- submission that is refused half-way or crashes leaves staged rows that nothing reads (no
-- delivery row: never completed, never counted); validate deletes them after a while.
--
-- So validate's tables can no longer point at `leveringen` with a foreign key.
ALTER TABLE validatie DROP CONSTRAINT validatie_levering_id_fkey;
ALTER TABLE validatie_chunks DROP CONSTRAINT validatie_chunks_levering_id_fkey;
ALTER TABLE validatie_leveringen DROP CONSTRAINT validatie_leveringen_levering_id_fkey;
ALTER TABLE traject_feiten DROP CONSTRAINT traject_feiten_levering_id_fkey;
ALTER TABLE bevindingen DROP CONSTRAINT bevindingen_levering_id_fkey;

-- When a chunk of the delivery was last stored or delivered again: staged rows of a submission
-- that never became a delivery are deleted once this is old enough (validate's sweep), and a
-- retried submission's chunks keep them alive.
ALTER TABLE validatie ADD COLUMN bijgewerkt_op timestamptz NOT NULL DEFAULT now();

-- The sweep's work: deliveries not completed yet (a handful at any time).
CREATE INDEX validatie_open ON validatie (bijgewerkt_op) WHERE voltooid_op IS NULL;

-- What the foreign keys' ON DELETE CASCADE did, kept: a deleted delivery takes validate's rows
-- along, and the processed-event ids of its chunks (so that the same bytes, delivered again,
-- are validated again rather than taken for chunks seen before).
CREATE FUNCTION validatie_met_levering_weg() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    DELETE FROM processed_events WHERE consumer = 'validate' AND event_id IN
        (SELECT event_id FROM validatie_chunks WHERE levering_id = OLD.id);
    DELETE FROM traject_feiten WHERE levering_id = OLD.id;
    DELETE FROM bevindingen WHERE levering_id = OLD.id;
    DELETE FROM validatie_leveringen WHERE levering_id = OLD.id;
    DELETE FROM validatie_chunks WHERE levering_id = OLD.id;
    DELETE FROM validatie WHERE levering_id = OLD.id;
    RETURN OLD;
END
$$;
CREATE TRIGGER leveringen_validatie_weg AFTER DELETE ON leveringen
    FOR EACH ROW EXECUTE FUNCTION validatie_met_levering_weg();
