-- I1, BEFORE ROW on calls: a missing or blank direction becomes inbound, case is folded.
-- Any other value is left for the CHECK to refuse: guessing would hide a bug.
-- No SET clause: see "Trigger functions without SET clauses" in docs/security.md.
CREATE OR REPLACE FUNCTION guard.normalise_call_direction()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.direction := guard.normalised_direction(NEW.direction);
    RETURN NEW;
END;
$$;
