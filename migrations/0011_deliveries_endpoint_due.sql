-- Fair claiming (issue 17): the worker claims per endpoint, each endpoint's due deliveries in time order, up to the
-- room it has left, and walks the endpoints with pending deliveries one index probe each. This index serves both, so
-- a claim reads a few rows per endpoint however long one endpoint's (or one tenant's) backlog is, where the scan of
-- `deliveries_due_idx` in time order read every due row ahead of the ones it could take.
--
-- Only an index is added: the previous release keeps claiming through `deliveries_due_idx`, which stays (the outbox
-- metrics read it too). Building it holds a SHARE lock on deliveries (publishes wait) for the duration of the build.
CREATE INDEX deliveries_endpoint_due_idx ON deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
