-- Payload fidelity (issue 15): an event's `data` is delivered and returned exactly as the publisher wrote it: member
-- order, number text (`2.50`, `12345678901234567890123`) and string escapes. `jsonb` keeps none of them (it sorts
-- members, parses numbers to numeric and rewrites escapes); `json` checks the text and stores it as is, and costs less
-- to insert and to read back as text. The application stores the minified source text of `data` and reads it with
-- `data::text`.
--
-- Existing rows keep what jsonb kept, which is the best there is: its text, with jsonb's member order and number text
-- (and a space after each `:` and `,`, which is insignificant). The change rewrites the table under an exclusive lock:
-- about 3 µs a row here. Minifying that text in SQL (a regular expression that skips string literals) cost 12 times as
-- much, minutes of blocked publishes on a large table, for whitespace alone.
--
-- During a rolling upgrade a replica of the previous version still inserts `...::jsonb` here: jsonb is assigned to
-- json by an assignment cast, so its writes keep working (with jsonb's text), and its reads parse the text as before.
ALTER TABLE events ALTER COLUMN data TYPE json USING data::text::json;

COMMENT ON COLUMN events.data IS
  'The publisher''s data member as sent, minified (whitespace between tokens removed): delivered and returned as is';
