-- Per-endpoint throttle (issue 20): `rate_limit` deliveries per second (NULL: none). The claim grants one delivery of a
-- throttled endpoint at a time and moves `throttle_next` on by 1.02 / rate_limit seconds, in the same statement, so
-- every worker and replica shares one schedule: a throttled endpoint's deliveries wait (no attempt used, no worker slot
-- held) until their turn. Nullable columns: no table rewrite; the previous release ignores them (and sends
-- unthrottled).
ALTER TABLE endpoints ADD COLUMN rate_limit integer CHECK (rate_limit IS NULL OR rate_limit BETWEEN 1 AND 10000);
ALTER TABLE endpoints ADD COLUMN throttle_next timestamptz;
