-- Phone numbers never reach the free text Booking Guard stores where reporting and reviewer
-- logins read it: an alert's message and details, a review item's details and note are masked
-- (guard.mask_phone_numbers, guard.mask_phone_numbers_json) as they are written, whoever writes
-- them (the application through rollback_booking's context, detection copying a failure reason,
-- a reviewer's note). Masked when stored, not when read: the reporting role reads these tables
-- directly (the BI views are security_invoker), and a number that is not stored cannot leak.
-- The dispatcher masks what it sends as well (guard/dispatch/message.py).
CREATE FUNCTION guard.mask_stored_free_text()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF TG_TABLE_NAME = 'alerts' THEN
        NEW.message := guard.mask_phone_numbers(NEW.message);
        NEW.details := guard.mask_phone_numbers_json(NEW.details);
    ELSIF TG_TABLE_NAME = 'review_items' THEN
        NEW.details := guard.mask_phone_numbers_json(NEW.details);
        NEW.note := guard.mask_phone_numbers(NEW.note);
    END IF;
    RETURN NEW;
END;
$$;
