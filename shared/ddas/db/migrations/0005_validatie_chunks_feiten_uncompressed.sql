-- Validate's per-chunk completion facts (`validatie_chunks.feiten`, MessagePack, about 430 KB for
-- a chunk of 2,000 trajectories: mostly 64-character BSN pseudonyms) are stored out of line
-- without PostgreSQL's own (pglz) compression. Compressing them took about 8 ms of each chunk's
-- transaction (1 ms without), and decompressing them slowed the completion's read of all
-- chunks; the price is about twice the space (some 45 MB per 200,000 trajectories, against
-- more than 200 MB of traject_feiten).
ALTER TABLE validatie_chunks ALTER COLUMN feiten SET STORAGE EXTERNAL;
