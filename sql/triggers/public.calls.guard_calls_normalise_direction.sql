-- I1: a missing direction becomes inbound before the row is stored. On every insert, and on
-- every update that would store a direction the CHECK refuses, whichever columns it sets: on an
-- adopted database the CHECK is NOT VALID until `guard db validate`, yet PostgreSQL checks each
-- new row version against it, so an old row without a direction would make the application's
-- update of its status fail. The WHEN clause keeps the function off the everyday update.
CREATE TRIGGER guard_calls_normalise_direction
BEFORE INSERT OR UPDATE ON public.calls
FOR EACH ROW
WHEN (new.direction IS NULL OR new.direction NOT IN ('inbound', 'outbound'))
EXECUTE FUNCTION guard.normalise_call_direction();
