-- An endpoint's deliveries of one status, newest first (GET /v1/endpoints/{id}/deliveries?status=...), and `recover`'s
-- batches of its failed ones in id order. `deliveries_endpoint_id_idx` (endpoint_id, id) served them by reading all
-- the endpoint's deliveries to keep those of the status: 5,440 pages to list 2 failed among 100,000 succeeded; 11 now.
-- Only an index is added: the previous release keeps working as it was. Building it holds a SHARE lock on deliveries
-- (publishes and the workers' writes wait, reads do not), about 1.5 s for a million deliveries here: the migrator runs
-- in a transaction, so CONCURRENTLY is not available. A claim writes none of its columns: claims stay heap-only
-- updates (0014). IF NOT EXISTS: a database already past 0012 when this file came (the migrator skips ids below its
-- latest) gets it from a later copy of this statement without a clash where it did run.
CREATE INDEX IF NOT EXISTS deliveries_endpoint_status_idx ON deliveries (endpoint_id, status, id);

-- `deliveries_tenant_id_idx` stays, although no query of the application reads it: deleting a tenant deletes its
-- deliveries by tenant_id (ON DELETE CASCADE from tenants), and without it that delete reads the whole table. With
-- 1,100,000 deliveries: deleting a tenant with one delivery took 2 ms with it and 359 ms without (a sequential scan of
-- 51,000 pages); one with 100,000 deliveries, 209 ms against 422 ms. It can go with that foreign key (a delivery's
-- endpoint and event belong to its tenant already, and both cascade through indexes of their own).
