-- The rollout bucket of a company, 0 to 99: `guard rules stage|mode --percent N` takes the
-- companies whose bucket is below N. A hash of the company id alone, so it never changes: the
-- companies of a 10 % rollout are all in the 50 % one, and the next release or server computes
-- the same buckets (md5 of the id's text, its first 32 bits as an unsigned number, modulo 100).
CREATE OR REPLACE FUNCTION guard.rollout_bucket(company_id bigint)
RETURNS integer
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
STRICT
SET search_path = pg_catalog
AS $$
    SELECT (('x' || left(md5(company_id::text), 8))::bit(32)::bigint % 100)::integer;
$$;
