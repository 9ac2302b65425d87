-- I1: a missing direction becomes inbound before the row is stored, on insert and on an update
-- that writes the direction. An update of other columns cannot break the (validated) CHECK; on an
-- adopted database whose CHECK is still NOT VALID, guard_calls_normalise_legacy_direction covers
-- those updates until `guard db validate` (guard.sync_legacy_triggers).
CREATE OR REPLACE TRIGGER guard_calls_normalise_direction
BEFORE INSERT OR UPDATE OF direction ON public.calls
FOR EACH ROW
WHEN (new.direction IS NULL OR new.direction NOT IN ('inbound', 'outbound'))
EXECUTE FUNCTION guard.normalise_call_direction();
