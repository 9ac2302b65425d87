-- Every update of a review item follows the review rules (guard.enforce_review_trail), whoever
-- runs it. Named to fire before review_items_stamp_actor (BEFORE triggers fire in name order),
-- which then records the login behind the claim or close this one let through.
CREATE OR REPLACE TRIGGER review_items_enforce_trail
BEFORE UPDATE ON guard.review_items
FOR EACH ROW EXECUTE FUNCTION guard.enforce_review_trail();
