-- The op-orde-rapport counted per chunk (services/validate/chunks.py): validate counts each
-- chunk's part of the OOR's own figures where it has the trajectories decoded anyway
-- (`ddas.domain.oor.Oor` without the tables), and stores it with the chunk, in the chunk's
-- transaction: a chunk stored once has its part once. The report merges a delivery's parts with
-- the tables of `validatie.tabellen` instead of reading and counting every trajectory again.
--
-- `oor` is `OorDeel.encode()` (JSON arrays; the clients are the BSN pseudonyms the trajectories
-- carry, as in `feiten`). Stored out of line without pglz compression, as `feiten` (migration
-- 0005): compressing costs the chunk's transaction more than the space is worth. NULL only for
-- chunks stored before this migration (or by an older validate): the report refuses a delivery
-- with such a chunk with a clear error (services/report/build.py); submit it again.
ALTER TABLE validatie_chunks ADD COLUMN oor bytea;
ALTER TABLE validatie_chunks ALTER COLUMN oor SET STORAGE EXTERNAL;

-- The pseudonymised trajectories themselves are no longer stored: the report was their only
-- reader, and they were 200 MB of JSON per national delivery for PostgreSQL to check and write.
-- The column stays, empty (NULL), rather than being dropped: migrations only ever add (an older
-- replica may still run beside a newer one, ddas.db.migrate). A later migration can drop it once
-- no release that writes it runs any more.
ALTER TABLE traject_feiten ALTER COLUMN traject DROP NOT NULL;
