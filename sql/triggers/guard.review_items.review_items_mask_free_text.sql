-- A review item's details and note are stored with phone numbers masked
-- (guard.mask_stored_free_text). Fires after review_items_enforce_trail (name order), which
-- has already refused a blank note; masking never empties one.
CREATE TRIGGER review_items_mask_free_text
BEFORE INSERT OR UPDATE OF details, note ON guard.review_items
FOR EACH ROW EXECUTE FUNCTION guard.mask_stored_free_text();
