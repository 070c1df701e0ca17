-- A key completed by the handler inside its own write statement (POST /v1/events: the event, its deliveries and the
-- completed key in ONE statement, two round trips instead of five) stores no response bytes: `response_ref` is the
-- handler's record of its answer (for an event: its id and how many deliveries it queued), from which the handler
-- renders the same response again on a replay. A completed row carries a stored response or a ref.
ALTER TABLE idempotency_keys
  ADD COLUMN response_ref jsonb,
  DROP CONSTRAINT idempotency_keys_check,
  ADD CONSTRAINT idempotency_keys_completed_check CHECK (
    (state = 'completed') = (completed_at IS NOT NULL AND (response_status IS NOT NULL OR response_ref IS NOT NULL))
  );
