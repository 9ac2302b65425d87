-- 0029_calls_checks_via_domains: the I1 and I2 CHECKs on public.calls cast to domains
-- (guard.call_direction, guard.customer_link) instead of writing their conditions out.
-- PostgreSQL compiles a table's CHECK expressions again for every statement that inserts or
-- updates a row, whatever the statement sets: the three CHECKs cost about 165k instructions per
-- write of a call, the application's update of a call's status included. A domain's CHECK is
-- compiled once per session; the cast costs about 75k (bench/instructions.py). Same rules, same
-- constraint names, same SQLSTATE (23514) for a refused write; the error now names the domain.
-- Online, in three steps, because the new CHECKs must be validated by a scan:
--   0029 (this)  renames the written-out CHECKs to *_written_out and adds the new ones under the
--                rules' names, NOT VALID: both check every write until 0029b;
--   0029a        validates each new CHECK whose written-out predecessors are valid (SHARE UPDATE
--                EXCLUSIVE: the application goes on writing while it scans);
--   0029b        drops the written-out CHECKs.
-- guard_calls_link_confidence_range becomes the second constraint of the domain
-- guard.customer_link, so I2 is one CHECK on the table (guard.rules.constraint_names).
-- Locks: ACCESS EXCLUSIVE on public.calls for an instant (catalog only: renames, and CHECKs added
-- NOT VALID, which read no rows), under the migrator's lock_timeout and retries.

-- squawk warns of domains with constraints because ALTER DOMAIN ... ADD CONSTRAINT checks every
-- column of that type under a lock that stops writers. No column has these types: only the CHECKs
-- on calls cast to them, and a change of a rule is made the way this migration makes it (a new
-- domain, a CHECK added NOT VALID and validated), never by altering a domain.

-- I1: see sql/types/guard.call_direction.sql.
CREATE DOMAIN guard.call_direction AS text
-- squawk-ignore ban-create-domain-with-constraint
CONSTRAINT guard_calls_direction_check CHECK (value IN ('inbound', 'outbound'));

-- I2: the five columns of a call's customer link, as one value.
CREATE TYPE guard.customer_link_fields AS (
    customer_id bigint,
    link_status text,
    linked_at timestamptz,
    link_method text,
    link_confidence numeric
);

-- I2: a valid customer link; see sql/types/guard.customer_link.sql.
CREATE DOMAIN guard.customer_link AS guard.customer_link_fields
-- squawk-ignore ban-create-domain-with-constraint
CONSTRAINT guard_calls_customer_link_check CHECK (
    coalesce(
        CASE
            WHEN (value).customer_id IS NOT NULL
                THEN
                    (value).link_status = 'linked'
                    AND (value).linked_at IS NOT NULL
                    AND (value).link_method IS NOT NULL
                    AND (value).link_confidence IS NOT NULL
            ELSE (value).link_status IN ('unlinked', 'anonymous')
        END,
        FALSE
    )
)
CONSTRAINT guard_calls_link_confidence_range CHECK ((value).link_confidence BETWEEN 0 AND 100);

-- The rules' names stay with the rules: the written-out CHECKs step aside for the new ones, which
-- take the names an application may see in an error.
ALTER TABLE public.calls
-- squawk-ignore renaming-object
RENAME CONSTRAINT guard_calls_direction_check TO guard_calls_direction_written_out;

ALTER TABLE public.calls
-- squawk-ignore renaming-object
RENAME CONSTRAINT guard_calls_customer_link_check TO guard_calls_customer_link_written_out;

ALTER TABLE public.calls
-- squawk-ignore renaming-object
RENAME CONSTRAINT guard_calls_link_confidence_range TO guard_calls_link_confidence_written_out;

ALTER TABLE public.calls
ADD CONSTRAINT guard_calls_direction_check
CHECK (direction IS NOT NULL AND (direction::guard.call_direction) IS NOT NULL) NOT VALID,
ADD CONSTRAINT guard_calls_customer_link_check
CHECK (
    (
        row(
            customer_id,
            customer_link_status,
            customer_linked_at,
            customer_link_method,
            customer_link_confidence
        )::guard.customer_link
    ) IS DISTINCT FROM NULL
) NOT VALID;

UPDATE guard.rules SET constraint_names = '{guard_calls_customer_link_check}'
WHERE id = 'I2_customer_link';

-- The new types belong to the owner role like everything in schema guard.
SELECT guard.apply_grants();
