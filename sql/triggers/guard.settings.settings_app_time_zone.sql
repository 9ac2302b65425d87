-- The application's time zone is a zone name (guard.check_app_time_zone).
CREATE OR REPLACE TRIGGER settings_app_time_zone
BEFORE INSERT OR UPDATE ON guard.settings
FOR EACH ROW WHEN (new.key = 'app_time_zone') EXECUTE FUNCTION guard.check_app_time_zone();
