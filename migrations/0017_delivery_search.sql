-- Tenant-wide delivery search (issue 19), newest first: GET /v1/deliveries?status=... reads a tenant's deliveries of
-- one status by this index, where `deliveries_tenant_id_idx` would read all of them to keep those few. Partial: a
-- delivery that succeeds leaves it (most do), so the index holds what is searched for (failed, cancelled, pending)
-- and costs nothing when a delivery succeeds; `status=succeeded` reads `deliveries_tenant_id_idx`, where nearly every
-- row matches.
CREATE INDEX IF NOT EXISTS deliveries_tenant_status_idx ON deliveries (tenant_id, status, id DESC)
  WHERE status <> 'succeeded';

-- An event's deliveries (GET /v1/events/{id}/deliveries, and the search by event type, through the events of that
-- type): without it both read every delivery of the tenant.
CREATE INDEX IF NOT EXISTS deliveries_event_idx ON deliveries (event_id, id);
