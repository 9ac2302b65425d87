-- A rule whose stage or mode changed shows when.
CREATE OR REPLACE TRIGGER rules_touch_updated_at
BEFORE UPDATE ON guard.rules
FOR EACH ROW EXECUTE FUNCTION guard.touch_updated_at();
