-- Deleting a tenant (issue 21): `DELETE /admin/tenants/{id}` sets `deleted_at` and disables the tenant's endpoints in
-- one transaction, so its keys stop working (the key lookup refuses a deleted tenant's keys, and every replica drops
-- its cached keys on the NOTIFY) and its deliveries stop (the worker claims nothing for a disabled endpoint). The
-- retention purge (layers/RetentionPurgeLive.ts) then removes its rows in batches: events with their deliveries and
-- attempts (counted in `deletion_events_removed`, the progress `GET /admin/tenants/{id}` shows), its idempotency keys,
-- and the tenant row last, whose cascades take the endpoints and API keys.
--
-- A nullable column, and a defaulted one (a constant default: no table rewrite); the previous release ignores both,
-- and would serve a deleting tenant's keys until its rows are gone.
ALTER TABLE tenants
  ADD COLUMN deleted_at timestamptz,
  ADD COLUMN deletion_events_removed bigint NOT NULL DEFAULT 0;

COMMENT ON COLUMN tenants.deleted_at IS
  'When DELETE /admin/tenants/{id} was asked; the tenant''s rows are being removed. NULL: an active tenant';
