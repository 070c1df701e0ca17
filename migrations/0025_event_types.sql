-- The event-type catalog (issue 22): each tenant describes the types it publishes, with an optional JSON Schema
-- (draft 2020-12) for `data` and examples. `schema` and `examples` are `json`: kept as the tenant wrote them (member
-- order included), so the document generated for receivers reads as written. `deprecated_at` / `archived_at` are the
-- flags with the time they were set (a deprecated type is still accepted, with a `Deprecation: @<seconds>` header;
-- an archived one is refused). The publishing path reads one row by (tenant_id, name): the unique index.
CREATE TABLE event_types (
  id            text PRIMARY KEY CHECK (id ~ '^ety_[0-9A-HJKMNP-TV-Z]{26}$'),
  tenant_id     text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name          text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,128}$'),
  description   text NOT NULL DEFAULT '' CHECK (char_length(description) <= 1024),
  schema        json,
  examples      json NOT NULL DEFAULT '[]'::json,
  deprecated_at timestamptz,
  archived_at   timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, name)
);

-- Strict mode: publishing a type the catalog does not hold is refused, and endpoints may only subscribe to catalog
-- types (or prefixes matching one). A constant default: no table rewrite; the previous release ignores it.
ALTER TABLE tenants ADD COLUMN strict_event_types boolean NOT NULL DEFAULT false;
