-- An alert's message and details are stored with phone numbers masked (guard.mask_stored_free_text).
CREATE TRIGGER alerts_mask_free_text
BEFORE INSERT OR UPDATE OF message, details ON guard.alerts
FOR EACH ROW EXECUTE FUNCTION guard.mask_stored_free_text();
