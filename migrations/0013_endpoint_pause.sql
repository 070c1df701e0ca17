-- An endpoint's pause (issue 17): while its circuit is open (or another worker's probe runs), its deliveries are not
-- claimed until `paused_until`. The claim filters on this one row, where deferring used to move every due delivery of
-- the endpoint forward, again at each half-open look: a dead endpoint with a large backlog rewrote all of it about
-- once a second. A nullable column without a default: no table rewrite, and the previous release, which ignores it,
-- keeps deferring its own way during a rolling upgrade.
ALTER TABLE endpoints ADD COLUMN paused_until timestamptz;
