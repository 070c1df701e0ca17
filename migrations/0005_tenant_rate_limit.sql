-- A tenant's own rate-limit quota (requests per window), overriding RATE_LIMIT_MAX / RATE_LIMIT_WINDOW. Both NULL =
-- the default quota. Read with the API key (cached a few seconds), never per request.
ALTER TABLE tenants
  ADD COLUMN rate_limit_max integer CHECK (rate_limit_max BETWEEN 1 AND 1000000000),
  ADD COLUMN rate_limit_window_seconds integer CHECK (rate_limit_window_seconds BETWEEN 1 AND 31536000),
  ADD CONSTRAINT tenants_rate_limit_complete CHECK ((rate_limit_max IS NULL) = (rate_limit_window_seconds IS NULL));
