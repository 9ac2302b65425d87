-- 0066_calls_row_triggers: the calls-side triggers become two row-level ones (their definitions
-- are in sql/: guard_calls_normalise, guard_calls_check_flag_write). The insert of a call fired
-- three triggers (direction with a WHEN clause, customer link, the claim of a booking: a
-- statement trigger with a transition table); it fires two row triggers. The application's write
-- of booking flags was marked by a BEFORE statement trigger and checked by an AFTER statement
-- trigger that also fired, with a transition table, on every other update of a call; it is
-- checked by a row trigger that fires only for an update of a flag column. Same invariants, same commit-time judgement
-- (docs/invariants.md, "Measured reasons for the shapes in sql/").
-- This drops what sql/ no longer defines; the definitions step of the same transaction creates
-- the new triggers, so no write between sees calls without them.
-- Locks: DROP TRIGGER takes ACCESS EXCLUSIVE on public.calls for an instant (catalog only),
-- under the migrator's lock_timeout and retries.
DROP TRIGGER IF EXISTS guard_calls_normalise_direction ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_normalise_customer_link ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_correct_flags_insert ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_note_flag_write ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_correct_flags_update ON public.calls;
-- Their only callers were the triggers above.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.correct_flags_after_call_insert();
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.note_flag_write();
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.correct_flags_after_call_update();
