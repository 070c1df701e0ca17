-- Claims as heap-only updates (issue 17): a claim writes `locked_until`, `locked_by` and `updated_at`, and an index on
-- `locked_by` made each of those writes a new entry in every index of deliveries. The worker now gives its leases back
-- by id at shutdown (it knows which it holds), so nothing reads this index any more. With no indexed column changed, a
-- claim can stay on its page (HOT) when the page has room: new pages are filled to 90%, leaving room for those updates.
--
-- During a rolling upgrade, a worker of the previous release still releases its leases by `locked_by` at shutdown:
-- without the index that statement scans the table once per stopping worker.
DROP INDEX IF EXISTS deliveries_locked_by_idx;
ALTER TABLE deliveries SET (fillfactor = 90);
