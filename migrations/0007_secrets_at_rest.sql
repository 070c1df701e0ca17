-- Secrets at rest (issue 14). The columns below hold values sealed by the application (services/SecretBox.ts):
-- `enc1:<key id>:<base64url 12-byte IV>:<base64url AES-256-GCM ciphertext || 16-byte tag>`, keys from ENCRYPTION_KEYS,
-- authenticated together with where they live, so a value copied to another row does not open there.
--
-- No schema change is needed: the columns are unbounded text (a sealed signing secret is ~150 characters) and no CHECK
-- constraint reads them. Existing plaintext rows are sealed by the re-encryption sweep (layers/SecretReencryption.ts)
-- that runs right after the migrations, at every start and in `npm run migrate`, not here: SQL cannot reach the keys.
-- Until it has run, and while a replica of the previous version still writes plaintext during a rolling upgrade, the
-- application reads both forms.
COMMENT ON COLUMN endpoints.secret IS
  'Standard Webhooks signing secret, sealed: enc1:<key id>:<iv>:<ciphertext+tag>, AAD endpoints.secret:<endpoint id>';
COMMENT ON COLUMN endpoints.previous_secret IS
  'The secret before the last rotation, sealed like secret (same AAD: endpoints.secret:<endpoint id>)';
COMMENT ON COLUMN idempotency_keys.response_body IS
  'Stored response body, sealed: enc1:<key id>:<iv>:<ciphertext+tag>, AAD idempotency_keys.response_body:<scope>:<fingerprint>:<key>';
