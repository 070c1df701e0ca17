-- The delivery engine (issue 6).

-- Which worker holds a delivery's lease (`locked_until`): a worker only finishes or releases deliveries it still holds,
-- so a worker whose lease expired (stalled, partitioned) cannot overwrite what the next holder did.
ALTER TABLE deliveries ADD COLUMN locked_by text;
-- The publishing request's W3C trace context, so each delivery attempt's span continues that trace.
ALTER TABLE deliveries ADD COLUMN traceparent text
  CHECK (traceparent IS NULL OR traceparent ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');
ALTER TABLE deliveries ADD COLUMN delivered_at timestamptz;

-- Every attempt, successful or not: what was sent when, how long it took, and what came back.
-- Attempt numbers can repeat (a worker whose lease expired mid-send, a manual re-queue), hence the surrogate key.
CREATE TABLE delivery_attempts (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id       text NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
  attempt           integer NOT NULL CHECK (attempt >= 1),
  started_at        timestamptz NOT NULL,
  duration_ms       integer NOT NULL CHECK (duration_ms >= 0),
  -- 'succeeded' (2xx), 'failed' (any other status), 'gone' (410), 'timeout', 'network_error', 'blocked' (SSRF guard).
  outcome           text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'gone', 'timeout', 'network_error', 'blocked')),
  status_code       integer CHECK (status_code BETWEEN 100 AND 599),
  error             text CHECK (char_length(error) <= 1024),
  -- At most the first 4 KiB of the response body, decoded as UTF-8.
  response_excerpt  text CHECK (octet_length(response_excerpt) <= 16384)
);

CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, id);

-- Leases of a worker, released on graceful shutdown.
CREATE INDEX deliveries_locked_by_idx ON deliveries (locked_by) WHERE locked_by IS NOT NULL;
