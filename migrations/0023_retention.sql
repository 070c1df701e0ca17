-- Retention (issue 21): events, their deliveries and attempts are kept for RETENTION (30 days by default), or for the
-- tenant's own `retention_seconds` set by the admin (NULL: the server's default). Reads hide what is past it at once
-- (layers/RetentionSql.ts); the purge (layers/RetentionPurgeLive.ts) removes it in bounded batches afterwards. An event
-- with a pending delivery is kept, and shown, until that delivery ends.
--
-- Batched deletes rather than time-partitioned tables dropped whole: retention is per tenant, so a partition of one
-- day holds rows of tenants that keep them for different times and could only be dropped once the longest retention
-- had passed; and a pending delivery must outlive its partition. The purge walks `events_tenant_id_idx` (tenant_id,
-- id DESC) by the ULID bound of the cutoff and each event's deliveries and attempts go by their foreign keys'
-- indexes (`deliveries_event_idx`, `delivery_attempts_delivery_idx`): no new index. README "Retention" has the
-- figures and what to do beyond one PostgreSQL.
--
-- A nullable column without a default: no table rewrite; the previous release ignores it.
ALTER TABLE tenants ADD COLUMN retention_seconds integer
  CHECK (retention_seconds IS NULL OR retention_seconds BETWEEN 1 AND 315360000);

COMMENT ON COLUMN tenants.retention_seconds IS
  'How long the tenant''s events, deliveries and attempts are kept, in seconds; NULL = RETENTION';
