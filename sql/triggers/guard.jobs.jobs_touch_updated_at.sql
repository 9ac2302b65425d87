-- A changed or re-enabled job shows when (the missed-run check counts its grace from then).
CREATE OR REPLACE TRIGGER jobs_touch_updated_at
BEFORE UPDATE ON guard.jobs
FOR EACH ROW EXECUTE FUNCTION guard.touch_updated_at();
