-- transactional: false
-- 0029b: drop the written-out I1 and I2 CHECKs that 0029_calls_checks_via_domains renamed; the
-- CHECKs that cast to domains (validated by 0029a where these were valid) enforce the same rules.
-- One statement: all three go together or none. IF EXISTS: a re-run after an interruption is
-- safe. Not in a transaction so that the rollback can re-add them NOT VALID and then validate
-- them in a second transaction, which lets the application write while it scans.
-- Locks: ACCESS EXCLUSIVE on public.calls for an instant (catalog only), under the migrator's
-- lock_timeout and retries.

ALTER TABLE public.calls
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT IF EXISTS guard_calls_direction_written_out,
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT IF EXISTS guard_calls_customer_link_written_out,
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT IF EXISTS guard_calls_link_confidence_written_out;
