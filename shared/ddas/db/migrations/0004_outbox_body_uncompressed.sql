-- The outbox's `body` (ingest's chunks: about 2 MB of JSON each, 200 MB for a national
-- delivery) is stored out of line without PostgreSQL's own (pglz) compression. Compressing it
-- cost about 1.2 s of the 2.5 s that ingest's transaction took for 200,000 trajectories, all of
-- it before the supplier gets its 202, for a value that lives only until the relay has
-- published it (then `body` is set to NULL). Kafka compresses the chunks on the wire anyway.
ALTER TABLE outbox ALTER COLUMN body SET STORAGE EXTERNAL;
