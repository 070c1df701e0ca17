-- The tenant portal (issue 23): a portal session is a short-lived link to `/portal` that lets a tenant's people manage
-- its webhooks. Like an API key, its token is shown once (in the link) and only its SHA-256 is stored. It works on
-- `/v1` as its tenant until `expires_at` (always set: a session never lasts for good) or its revocation, never on
-- `/admin`, `/v1/api-keys` or `/v1/portal-sessions`. Rows go with their tenant (the purge removes them in batches
-- when the tenant is deleted, and the cascade takes what is left); expired ones are cleared when the tenant next
-- creates one. A new table: the previous release ignores it.
CREATE TABLE portal_sessions (
  id          text PRIMARY KEY CHECK (id ~ '^pss_[0-9A-HJKMNP-TV-Z]{26}$'),
  tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  read_only   boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz
);

CREATE INDEX portal_sessions_tenant_id_idx ON portal_sessions (tenant_id, expires_at);
