-- Payload filters (issue 20): `filter` is the document as the tenant sent it (read back), `filter_path` the SQL/JSON
-- path predicate it compiles to (src/domain/EventFilter.ts), which the publishing statement evaluates against each
-- event (`jsonb_path_match`): an event creates deliveries only for endpoints whose filter it matches. NULL: no
-- filter. Nullable columns: no table rewrite; the previous release ignores them (and delivers as if unfiltered).
ALTER TABLE endpoints ADD COLUMN filter jsonb;
ALTER TABLE endpoints ADD COLUMN filter_path jsonpath;
