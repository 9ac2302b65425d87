-- 0034_dispatcher_bounded: a dispatcher whose memory and wake-up cost do not grow with the data.
-- The claims return a bounded row (the message cut to 4000 characters, details over 16 kB as an
-- excerpt with their size and where to read the rest: guard.alert_details_excerpt), so 2 MB
-- rollback contexts never reach `guard watch` whole; the alert claim updates its rows by primary
-- key and orders as the due index does, the release finds claimed rows through their own index,
-- so a backlog on a dead channel is not read at every wake-up. The indexes come in
-- 0034a_dispatcher_bounded_index (CONCURRENTLY, outside a transaction).
-- Locks: none on tables (functions only).

-- What of an alert's details travels with a claimed delivery. Details up to 16 kB as they are;
-- larger ones (a rollback context of megabytes) as their top-level scalar values, strings cut to
-- 200 characters, at most 64 keys, plus "details_truncated": the full size and the query that
-- reads the rest. So a claimed batch is bounded in bytes as well as rows, and no multi-megabyte
-- document ever reaches `guard watch` whole (it renders only a whitelist of scalar keys anyway).
CREATE OR REPLACE FUNCTION guard.alert_details_excerpt(alert_id bigint, details jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT
        CASE
            WHEN s.bytes <= 16384 THEN alert_details_excerpt.details
            ELSE
                coalesce((
                    SELECT jsonb_object_agg(e.key, e.value)
                    FROM (
                        SELECT
                            f.key,
                            CASE
                                WHEN jsonb_typeof(f.value) = 'string'
                                    THEN to_jsonb(left(f.value #>> '{}', 200))
                                ELSE f.value
                            END AS value
                        FROM jsonb_each(
                            CASE
                                WHEN jsonb_typeof(alert_details_excerpt.details) = 'object'
                                    THEN alert_details_excerpt.details
                                ELSE '{}'::jsonb
                            END
                        ) AS f
                        WHERE
                            jsonb_typeof(f.value) IN ('string', 'number', 'boolean', 'null')
                            AND length(f.key) <= 64
                        ORDER BY f.key
                        LIMIT 64
                    ) AS e
                ), '{}'::jsonb)
                || jsonb_build_object(
                    'details_truncated',
                    jsonb_build_object(
                        'bytes', s.bytes,
                        'read_more', format(
                            'SELECT details FROM guard.alerts WHERE id = %s',
                            alert_details_excerpt.alert_id
                        )
                    )
                )
        END
    FROM (SELECT octet_length(alert_details_excerpt.details::text) AS bytes) AS s;
$$;

-- Hand due deliveries of one channel to one dispatcher for a lease. SKIP LOCKED: two
-- dispatchers claiming at once never get the same row; the lease (claimed_until) keeps the row
-- theirs after this transaction commits, and lets it go again if that dispatcher dies.
-- Reads only what it claims: the due index's order is the ORDER BY (next_attempt_at ties, e.g.
-- a backlog enqueued by one statement, are not sorted in full), and the rows are updated by
-- primary key (= ANY of the claimed ids), so a backlog on a dead channel costs a wake-up nothing.
-- Bounded in bytes too: the message cut to 4000 characters, large details as an excerpt
-- (guard.alert_details_excerpt).
CREATE OR REPLACE FUNCTION guard.claim_alert_deliveries(
    delivery_channel text, worker text, max_rows integer, lease_seconds double precision
)
RETURNS TABLE (
    alert_id bigint,
    attempts integer,
    check_id text,
    rule_id text,
    company_id bigint,
    entity_type text,
    entity_id bigint,
    severity text,
    message text,
    details jsonb,
    alert_status text,
    occurrences integer,
    first_seen_at timestamptz,
    last_seen_at timestamptz
)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    WITH claimed AS (
        UPDATE guard.alert_deliveries AS d
        SET
            claimed_by = claim_alert_deliveries.worker,
            claimed_until = now()
            + make_interval(secs => claim_alert_deliveries.lease_seconds)
        WHERE
            d.channel = claim_alert_deliveries.delivery_channel
            AND d.alert_id = ANY(ARRAY(
            SELECT q.alert_id
            FROM guard.alert_deliveries AS q
            WHERE
                q.channel = claim_alert_deliveries.delivery_channel
                AND q.status = 'pending'
                AND q.next_attempt_at <= now()
                AND (q.claimed_until IS NULL OR q.claimed_until < now())
            ORDER BY q.next_attempt_at, q.alert_id
            LIMIT claim_alert_deliveries.max_rows
            FOR UPDATE SKIP LOCKED
        ))
        RETURNING d.alert_id, d.attempts
    )
    SELECT
        c.alert_id,
        c.attempts,
        a.check_id,
        k.rule_id,
        a.company_id,
        a.entity_type,
        a.entity_id,
        a.severity,
        left(a.message, 4000) AS message,
        guard.alert_details_excerpt(c.alert_id, a.details) AS details,
        a.status,
        a.occurrences,
        a.first_seen_at,
        a.last_seen_at
    FROM claimed AS c
    LEFT JOIN guard.alerts AS a ON a.id = c.alert_id
    LEFT JOIN guard.checks AS k ON a.check_id = k.id
    ORDER BY c.alert_id;
$$;

-- Hand one channel's due resolved notifications to one dispatcher for a lease: deliveries sent
-- while their alert was open whose alert has resolved since. SKIP LOCKED and the lease
-- (claimed_by, claimed_until on the delivered row) as in guard.claim_alert_deliveries; a claim
-- whose send failed is due again when its lease ends. Rows with nothing to announce (the alert
-- had resolved before it was delivered: that message said so) are settled first. Bounded in
-- bytes as the alert claim is: the message cut, large details as an excerpt.
CREATE OR REPLACE FUNCTION guard.claim_resolved_deliveries(
    delivery_channel text, worker text, max_rows integer, lease_seconds double precision
)
RETURNS TABLE (
    alert_id bigint,
    attempts integer,
    check_id text,
    rule_id text,
    company_id bigint,
    entity_type text,
    entity_id bigint,
    severity text,
    message text,
    details jsonb,
    alert_status text,
    occurrences integer,
    first_seen_at timestamptz,
    last_seen_at timestamptz,
    resolved_at timestamptz
)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
#variable_conflict use_column
BEGIN
    UPDATE guard.alert_deliveries AS d
    SET resolved_sent_at = d.delivered_at
    FROM guard.alerts AS a
    WHERE
        a.id = d.alert_id
        AND d.channel = claim_resolved_deliveries.delivery_channel
        AND d.status = 'delivered'
        AND d.resolved_sent_at IS NULL
        AND a.status = 'resolved'
        AND a.resolved_at <= d.delivered_at;

    RETURN QUERY
    WITH claimed AS (
        UPDATE guard.alert_deliveries AS d
        SET
            claimed_by = claim_resolved_deliveries.worker,
            claimed_until = now()
            + make_interval(secs => claim_resolved_deliveries.lease_seconds)
        WHERE (d.alert_id, d.channel) IN (
            SELECT q.alert_id, q.channel
            FROM guard.alert_deliveries AS q
            INNER JOIN guard.alerts AS a ON q.alert_id = a.id
            WHERE
                q.channel = claim_resolved_deliveries.delivery_channel
                AND q.status = 'delivered'
                AND q.resolved_sent_at IS NULL
                AND a.status = 'resolved'
                AND (q.claimed_until IS NULL OR q.claimed_until < now())
            ORDER BY a.resolved_at, q.alert_id
            LIMIT claim_resolved_deliveries.max_rows
            FOR UPDATE OF q SKIP LOCKED
        )
        RETURNING d.alert_id, d.attempts
    )
    SELECT
        c.alert_id,
        c.attempts,
        a.check_id,
        k.rule_id,
        a.company_id,
        a.entity_type,
        a.entity_id,
        a.severity,
        left(a.message, 4000) AS message,
        guard.alert_details_excerpt(c.alert_id, a.details) AS details,
        a.status,
        a.occurrences,
        a.first_seen_at,
        a.last_seen_at,
        a.resolved_at
    FROM claimed AS c
    INNER JOIN guard.alerts AS a ON c.alert_id = a.id
    LEFT JOIN guard.checks AS k ON a.check_id = k.id
    ORDER BY c.alert_id;
END;
$$;

-- Give back claims a dispatcher holds but did not send (graceful shutdown): the rows become
-- due again at once for any dispatcher. Returns the rows released. Found through the index of
-- claimed rows (alert_deliveries_claimed_idx), not among all of the channel's pending rows.
CREATE OR REPLACE FUNCTION guard.release_alert_deliveries(delivery_channel text, worker text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    released integer;
BEGIN
    UPDATE guard.alert_deliveries AS d
    SET claimed_by = NULL, claimed_until = NULL
    WHERE
        d.channel = release_alert_deliveries.delivery_channel
        AND d.claimed_until IS NOT NULL
        AND d.claimed_by = release_alert_deliveries.worker
        AND d.status = 'pending';
    GET DIAGNOSTICS released = ROW_COUNT;
    RETURN released;
END;
$$;

-- Ownership and grants of the new objects.
SELECT guard.apply_grants();
