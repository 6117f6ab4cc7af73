-- Each trajectory's facts were stored twice by validate: as a row of `traject_feiten` (COPY, one
-- row per trajectory) and, per chunk, as one MessagePack value in `validatie_chunks.feiten`. The
-- completion reads only the latter (one value per chunk instead of 200,000 rows), and the report
-- reads the chunks' OOR parts (migration 0010): nothing read `traject_feiten` any more, while
-- writing it cost validate and PostgreSQL about a tenth of a national delivery's CPU
-- (docs/benchmarks.md). The facts stay stored, per trajectory, in `validatie_chunks.feiten`.
CREATE OR REPLACE FUNCTION validatie_met_levering_weg() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    DELETE FROM processed_events WHERE consumer = 'validate' AND event_id IN
        (SELECT event_id FROM validatie_chunks WHERE levering_id = OLD.id);
    DELETE FROM bevindingen WHERE levering_id = OLD.id;
    DELETE FROM validatie_leveringen WHERE levering_id = OLD.id;
    DELETE FROM validatie_chunks WHERE levering_id = OLD.id;
    DELETE FROM validatie WHERE levering_id = OLD.id;
    RETURN OLD;
END
$$;

DROP TABLE traject_feiten;
