-- A completed idempotency key holds exactly ONE answer (issue 15): its stored response (status, headers and body,
-- all three) or the ref of the handler that completed it in its own write statement, never both; a claim in progress
-- holds neither. Until now a reclaim and a completion left the other kind in place, so a key completed by
-- POST /v1/events (a ref), reclaimed after its TTL by POST /v1/endpoints (a stored response), then retried, was
-- answered from the stale ref: the create ran again under `Idempotent-Replayed: true`.
--
-- Rows written before the fix: a ref beside a stored response, or on a claim in progress, is always the stale one (a
-- reclaim cleared the stored response but never the ref), so it is cleared. Whatever still breaks the rules below
-- cannot be replayed at all and is deleted: the key is then forgotten, as if expired.
UPDATE idempotency_keys SET response_ref = NULL
WHERE response_ref IS NOT NULL AND (state = 'in_progress' OR response_status IS NOT NULL);

DELETE FROM idempotency_keys
WHERE NOT (
  num_nonnulls(response_status, response_headers, response_body) IN (0, 3)
  AND CASE WHEN state = 'completed'
    THEN completed_at IS NOT NULL AND ((response_status IS NOT NULL) <> (response_ref IS NOT NULL))
    ELSE completed_at IS NULL AND response_status IS NULL AND response_ref IS NULL
  END
);

ALTER TABLE idempotency_keys
  DROP CONSTRAINT idempotency_keys_completed_check,
  -- A stored response is whole or absent.
  ADD CONSTRAINT idempotency_keys_response_whole CHECK (
    num_nonnulls(response_status, response_headers, response_body) IN (0, 3)
  ),
  ADD CONSTRAINT idempotency_keys_one_answer CHECK (
    CASE WHEN state = 'completed'
      THEN completed_at IS NOT NULL AND ((response_status IS NOT NULL) <> (response_ref IS NOT NULL))
      ELSE completed_at IS NULL AND response_status IS NULL AND response_ref IS NULL
    END
  );
