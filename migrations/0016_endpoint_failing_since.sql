-- When an endpoint's attempts started failing (issue 19): set by the first failed attempt after a success, cleared by
-- the next success (reported as `codex.delivery.recovered`); an endpoint whose attempts have all failed for
-- ENDPOINT_DISABLE_AFTER is disabled (`codex.endpoint.disabled`, reason `failing`), its pending deliveries kept for
-- when it is enabled again. A nullable column without a default: no table rewrite; the previous release ignores it.
ALTER TABLE endpoints ADD COLUMN failing_since timestamptz;
