-- Self-service API keys (issue 21): each key gets a name, a scope and an optional expiry. `name` defaults to '' for the
-- keys issued before (by the admin API, which still names none); `scope` to 'full', what every existing key could do;
-- `expires_at` NULL, never. Constant defaults and a nullable column: no table rewrite (the CHECKs scan the few rows
-- once); the previous release ignores all three (and would let a read key write, or an expired key in, until it is
-- replaced).
ALTER TABLE api_keys ADD COLUMN name text NOT NULL DEFAULT '' CHECK (char_length(name) <= 200);
ALTER TABLE api_keys ADD COLUMN scope text NOT NULL DEFAULT 'full' CHECK (scope IN ('full', 'read'));
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
