-- Idempotency keys (IETF draft-ietf-httpapi-idempotency-key-header): one row per (scope, key). The scope is the tenant
-- id for /v1 requests and the fixed 'admin' scope for /admin requests, so tenants never see each other's keys.
--
-- Life of a row: a request claims the key with ONE statement (INSERT ... ON CONFLICT ... RETURNING), committed at
-- once, state 'in_progress' with a fresh lock_token. The business write and the UPDATE to 'completed' with the stored
-- response then commit in ONE transaction, fenced by lock_token. A response >= 500 deletes the row instead (a retry
-- may succeed). A claim whose process died stays 'in_progress' and may be reclaimed once locked_at is older than
-- IDEMPOTENCY_LOCK_TIMEOUT; a completed row may be reclaimed (and is purged) once expires_at has passed.
CREATE TABLE idempotency_keys (
  scope             text NOT NULL CHECK (scope = 'admin' OR scope ~ '^ten_[0-9A-HJKMNP-TV-Z]{26}$'),
  key               text NOT NULL CHECK (key ~ '^[!-~]{1,255}$'),
  -- hex SHA-256 of method, path and the SHA-256 of the canonical request body
  fingerprint       text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
  method            text NOT NULL,
  path              text NOT NULL,
  state             text NOT NULL CHECK (state IN ('in_progress', 'completed')),
  -- the claim's owner: a completion or release only applies while this is still its token
  lock_token        text NOT NULL,
  locked_at         timestamptz NOT NULL DEFAULT now(),
  response_status   integer CHECK (response_status BETWEEN 100 AND 499),
  response_headers  jsonb,
  response_body     text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  completed_at      timestamptz,
  expires_at        timestamptz NOT NULL,
  PRIMARY KEY (scope, key),
  CHECK ((state = 'completed') = (response_status IS NOT NULL AND completed_at IS NOT NULL))
);

-- The purge walks expired rows in batches.
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
