-- 0065_alerts_fillfactor: guard.alerts at fillfactor 70. Every detection pass bumps each open
-- alert it finds again (occurrences, last_seen_at); with room left in each page those updates stay
-- in place (HOT) instead of adding an entry to every index: at 3M calls and 71 000 open alerts a
-- pass took 3.1 s before and 2.1 s after (bench/scale.py). It applies to pages written from now
-- on, no rewrite.
-- Locks: SHARE UPDATE EXCLUSIVE on guard.alerts for milliseconds (writers are not blocked).
ALTER TABLE guard.alerts SET (fillfactor = 70);
