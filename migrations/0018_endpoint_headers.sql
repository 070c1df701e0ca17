-- Custom headers sent with every delivery to an endpoint (issue 20). Their values may be credentials: `headers` holds
-- them sealed (SecretBox, context `endpoints.headers:<endpoint id>`: the name/value object as JSON), NULL for none;
-- `header_names` keeps the names readable, so that reading an endpoint shows them (values masked) without opening
-- anything. Nullable and defaulted columns: no table rewrite; the previous release ignores them.
ALTER TABLE endpoints ADD COLUMN headers text;
ALTER TABLE endpoints ADD COLUMN header_names text[] NOT NULL DEFAULT '{}';
