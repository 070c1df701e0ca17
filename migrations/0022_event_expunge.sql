-- Expunging an event's payload (issue 21): DELETE /v1/events/{id}/data sets `data` to NULL for good and records when
-- (`data_expunged_at`); the event's metadata, deliveries and attempts stay (their response excerpts are erased too).
-- Both changes are catalog-only: dropping NOT NULL and adding a nullable column without a default rewrite nothing.
--
-- The CHECK is added NOT VALID: rows written from now on are checked (and every expunge writes its row), while the
-- rows already there, which all hold data and no expunge time, are not scanned under the ALTER's exclusive lock. A
-- `VALIDATE CONSTRAINT` can prove them later under a lock that does not block writes; nothing depends on it.
--
-- During a rolling upgrade the previous release reads `data` as a string: an expunged event would be an error there
-- (a 500 on its read, and a failed claim should one of its deliveries be re-queued by that release). Expunge once the
-- previous release is gone.
ALTER TABLE events ALTER COLUMN data DROP NOT NULL;
ALTER TABLE events ADD COLUMN data_expunged_at timestamptz;
ALTER TABLE events ADD CONSTRAINT events_data_expunged_check
  CHECK ((data IS NULL) = (data_expunged_at IS NOT NULL)) NOT VALID;

COMMENT ON COLUMN events.data IS
  'The publisher''s data member as sent, minified (whitespace between tokens removed): delivered and returned as is; NULL once expunged (data_expunged_at)';
