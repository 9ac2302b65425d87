-- Every write of a review item records the login behind a claim or a close (see
-- guard.stamp_review_actor); a row trigger, as the queue is written a few rows at a time.
CREATE OR REPLACE TRIGGER review_items_stamp_actor
BEFORE INSERT OR UPDATE ON guard.review_items
FOR EACH ROW EXECUTE FUNCTION guard.stamp_review_actor();
