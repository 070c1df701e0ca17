-- Deleting an endpoint keeps its row (issue 15): its deliveries and their attempts are the tenant's history of what
-- was sent, and the worker may still be sending one when the endpoint is deleted. A deleted endpoint (`deleted_at`
-- set) is absent from every endpoint read, receives nothing, and keeps no signing secret: there is nothing left to
-- sign, and a secret kept is a secret that can leak. Hard deletion remains only through the tenant (ON DELETE CASCADE).
ALTER TABLE endpoints
  ADD COLUMN deleted_at timestamptz,
  ALTER COLUMN secret DROP NOT NULL,
  -- A live endpoint always has its secret; a deleted one has none, and no previous one either.
  ADD CONSTRAINT endpoints_secret_while_live CHECK ((deleted_at IS NULL) = (secret IS NOT NULL)),
  ADD CONSTRAINT endpoints_no_previous_secret_when_deleted CHECK (
    deleted_at IS NULL OR (previous_secret IS NULL AND previous_secret_expires_at IS NULL)
  );

COMMENT ON COLUMN endpoints.deleted_at IS
  'When the endpoint was deleted (DELETE /v1/endpoints/{id}); NULL while it exists. Its secrets are NULL from then on.';
COMMENT ON COLUMN endpoints.secret IS
  'Standard Webhooks signing secret, sealed: enc1:<key id>:<iv>:<ciphertext+tag>, AAD endpoints.secret:<endpoint id>; NULL once deleted';
