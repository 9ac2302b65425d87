-- The review trail is written by the database's rules, not by whoever runs the UPDATE: the
-- reviewer role may UPDATE the claim and close columns (the review functions run with its
-- rights), so these rules hold for any SQL a reviewer, a job or the owner runs.
-- open -> claimed -> resolved | dismissed, or open -> resolved | dismissed; nothing else:
-- a closed item is final (never reopened, its outcome, note and times never rewritten) and a
-- claim is not handed back. claimed_at and closed_at are the transaction's time (now()): a
-- statement may leave them out or say now(), any other time is refused rather than corrected, so
-- a forged time never looks accepted. Closing needs a note; only a dismissed item can be a false
-- positive (as guard.review_close says). While an item is claimed its claimed_by label may be
-- corrected (guard.stamp_review_actor records the login that did it); nothing else of the trail
-- changes outside a transition.
-- One error (check_violation) naming the item and the rule; the statement changes nothing.
CREATE OR REPLACE FUNCTION guard.enforce_review_trail()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    problem text;
BEGIN
    IF OLD.status IN ('resolved', 'dismissed') THEN
        IF (NEW.status, NEW.claimed_by, NEW.claimed_at, NEW.closed_by, NEW.closed_at, NEW.note,
            NEW.false_positive)
            IS DISTINCT FROM (OLD.status, OLD.claimed_by, OLD.claimed_at, OLD.closed_by,
                OLD.closed_at, OLD.note, OLD.false_positive) THEN
            problem := format('it is %s, and a closed item is never reopened or rewritten', OLD.status);
        END IF;
    ELSIF NEW.status = 'open' AND OLD.status = 'claimed' THEN
        problem := 'a claimed item is closed (guard review resolve|dismiss), not handed back';
    ELSIF NEW.status = 'claimed' AND OLD.status = 'open' THEN
        IF NEW.claimed_at IS DISTINCT FROM now() AND NEW.claimed_at IS NOT NULL THEN
            problem := 'claimed_at is the time of the claim, set by the database';
        ELSIF nullif(btrim(NEW.claimed_by), '') IS NULL THEN
            problem := 'a claim needs a claimed_by label';
        ELSIF (NEW.closed_by, NEW.closed_at, NEW.note, NEW.false_positive)
            IS DISTINCT FROM (OLD.closed_by, OLD.closed_at, OLD.note, OLD.false_positive) THEN
            problem := 'claiming an item does not close it';
        END IF;
        NEW.claimed_at := now();
    ELSIF NEW.status IN ('resolved', 'dismissed') THEN
        IF NEW.closed_at IS DISTINCT FROM now() AND NEW.closed_at IS NOT NULL THEN
            problem := 'closed_at is the time of the close, set by the database';
        ELSIF nullif(btrim(NEW.note), '') IS NULL THEN
            problem := 'closing an item needs a note';
        ELSIF NEW.false_positive AND NEW.status <> 'dismissed' THEN
            problem := 'only a dismissed item can be a false positive';
        ELSIF (NEW.claimed_by, NEW.claimed_at) IS DISTINCT FROM (OLD.claimed_by, OLD.claimed_at) THEN
            problem := 'closing an item does not change its claim';
        END IF;
        NEW.closed_at := now();
    ELSIF (NEW.claimed_at, NEW.closed_by, NEW.closed_at, NEW.note, NEW.false_positive)
        IS DISTINCT FROM (OLD.claimed_at, OLD.closed_by, OLD.closed_at, OLD.note, OLD.false_positive)
        OR (NEW.status = 'open' AND NEW.claimed_by IS DISTINCT FROM OLD.claimed_by) THEN
        problem := format(
            'it is %s: its claim and close are written by claiming and closing it', OLD.status
        );
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'review item %: %', OLD.id, problem
            USING
                ERRCODE = 'check_violation',
                HINT = 'guard review claim|resolve|dismiss (guard.review_claim, guard.review_close)';
    END IF;
    RETURN NEW;
END;
$$;
