-- A tuned setting shows when it was tuned.
CREATE OR REPLACE TRIGGER settings_touch_updated_at
BEFORE UPDATE ON guard.settings
FOR EACH ROW EXECUTE FUNCTION guard.touch_updated_at();
