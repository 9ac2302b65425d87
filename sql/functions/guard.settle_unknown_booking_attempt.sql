-- I7, the booking journal and the booking path.
-- An attempt whose outcome was unknown is settled (recorded, or found not booked): its
-- booking_outcome_unknown review item is resolved and its alert closed as fixed, with how it
-- was settled as the note. Called by complete_booking_attempt and fail_booking_attempt; not
-- granted to anyone (it runs inside those SECURITY DEFINER functions as the owner).
CREATE OR REPLACE FUNCTION guard.settle_unknown_booking_attempt(attempt_id bigint, call_id bigint, note text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE guard.review_items AS r
    SET status = 'resolved', closed_by = 'booking-guard', closed_at = now(), note = settle_unknown_booking_attempt.note
    WHERE
        r.call_id = settle_unknown_booking_attempt.call_id
        AND r.reason = 'booking_outcome_unknown'
        AND r.status IN ('open', 'claimed');
    UPDATE guard.alerts AS a
    SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
    WHERE
        a.status = 'open'
        AND a.fingerprint = 'booking_outcome_unknown:booking_attempt:' || settle_unknown_booking_attempt.attempt_id;
END;
$$;
