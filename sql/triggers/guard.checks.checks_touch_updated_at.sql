-- A check switched off or on shows when.
CREATE OR REPLACE TRIGGER checks_touch_updated_at
BEFORE UPDATE ON guard.checks
FOR EACH ROW EXECUTE FUNCTION guard.touch_updated_at();
