-- Who claimed and who closed a review item is the login that did it, whatever the statement
-- wrote: claimed_by_role is set when an item becomes claimed (or its claim changes hands), cleared
-- when the claim is, and otherwise kept; closed_by_role likewise for closing. The labels
-- claimed_by and closed_by stay as the reviewer gave them.
-- session_user, the login that authenticated: SET ROLE (to the reviewer group, say) would make
-- current_user name a group instead of the person, and inside a SECURITY DEFINER caller
-- current_user is the owner; only a superuser can change session_user.
CREATE OR REPLACE FUNCTION guard.stamp_review_actor()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.claimed_by_role := CASE WHEN NEW.claimed_at IS NOT NULL THEN session_user END;
        NEW.closed_by_role := CASE WHEN NEW.closed_at IS NOT NULL THEN session_user END;
        RETURN NEW;
    END IF;
    IF NEW.claimed_at IS NULL THEN
        NEW.claimed_by_role := NULL;
    ELSIF (NEW.status = 'claimed' AND OLD.status IS DISTINCT FROM 'claimed')
        OR (NEW.claimed_by, NEW.claimed_at) IS DISTINCT FROM (OLD.claimed_by, OLD.claimed_at) THEN
        NEW.claimed_by_role := session_user;
    ELSE
        NEW.claimed_by_role := OLD.claimed_by_role;
    END IF;
    IF NEW.closed_at IS NULL THEN
        NEW.closed_by_role := NULL;
    ELSIF OLD.status IS DISTINCT FROM NEW.status
        OR (NEW.closed_by, NEW.closed_at) IS DISTINCT FROM (OLD.closed_by, OLD.closed_at) THEN
        NEW.closed_by_role := session_user;
    ELSE
        NEW.closed_by_role := OLD.closed_by_role;
    END IF;
    RETURN NEW;
END;
$$;
