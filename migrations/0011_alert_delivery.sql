-- Alert delivery: per-channel delivery state of the alert outbox (guard.alerts), claimed
-- by `guard watch` with FOR UPDATE SKIP LOCKED and a lease; see docs/alerts.md.

-- Delivery state of each alert per dispatcher channel (stdout, webhook, email): the outbox's
-- bookkeeping. A row is claimed by one dispatcher for a lease (claimed_by, claimed_until), sent,
-- then marked delivered; a failed send is retried with exponential backoff until max attempts.
-- No foreign key to guard.alerts: alerts stay partitionable and retention may drop them.
CREATE TABLE guard.alert_deliveries (
    alert_id bigint NOT NULL,
    channel text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    last_error text,
    claimed_by text,
    claimed_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, channel),
    CONSTRAINT alert_deliveries_delivered_has_time CHECK (
        (status = 'delivered') = (delivered_at IS NOT NULL)
    ),
    CONSTRAINT alert_deliveries_claim_is_complete CHECK (
        (claimed_by IS NULL) = (claimed_until IS NULL)
    )
);

CREATE INDEX alert_deliveries_due_idx ON guard.alert_deliveries (channel, next_attempt_at)
WHERE status = 'pending';

-- Give every alert not yet delivered everywhere a pending delivery row for each of the
-- dispatcher's channels (idempotent: existing rows are left alone). Returns the rows added.
CREATE FUNCTION guard.enqueue_alert_deliveries(channels text[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    added integer;
BEGIN
    INSERT INTO guard.alert_deliveries (alert_id, channel)
    SELECT a.id, ch.channel
    FROM guard.alerts AS a
    CROSS JOIN pg_catalog.unnest(enqueue_alert_deliveries.channels) AS ch (channel)
    WHERE a.delivered_at IS NULL
    ON CONFLICT (alert_id, channel) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END;
$$;

-- Hand due deliveries of one channel to one dispatcher for a lease. SKIP LOCKED: two
-- dispatchers claiming at once never get the same row; the lease (claimed_until) keeps the row
-- theirs after this transaction commits, and lets it go again if that dispatcher dies.
CREATE FUNCTION guard.claim_alert_deliveries(
    delivery_channel text, worker text, max_rows integer, lease_seconds double precision
)
RETURNS TABLE (
    alert_id bigint,
    attempts integer,
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
        WHERE (d.alert_id, d.channel) IN (
            SELECT q.alert_id, q.channel
            FROM guard.alert_deliveries AS q
            WHERE
                q.channel = claim_alert_deliveries.delivery_channel
                AND q.status = 'pending'
                AND q.next_attempt_at <= now()
                AND (q.claimed_until IS NULL OR q.claimed_until < now())
            ORDER BY q.next_attempt_at, q.alert_id
            LIMIT claim_alert_deliveries.max_rows
            FOR UPDATE SKIP LOCKED
        )
        RETURNING d.alert_id, d.attempts
    )
    SELECT
        c.alert_id,
        c.attempts,
        a.rule_id,
        a.company_id,
        a.entity_type,
        a.entity_id,
        a.severity,
        a.message,
        a.details,
        a.status,
        a.occurrences,
        a.first_seen_at,
        a.last_seen_at
    FROM claimed AS c
    LEFT JOIN guard.alerts AS a ON a.id = c.alert_id
    ORDER BY c.alert_id;
$$;

-- Record that alerts were sent on a channel (whoever holds the claim: the send happened), and
-- stamp guard.alerts.delivered_at on each alert whose every delivery row is now delivered.
-- Returns the delivery rows newly marked.
CREATE FUNCTION guard.complete_alert_deliveries(delivery_channel text, alert_ids bigint[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    marked integer;
BEGIN
    UPDATE guard.alert_deliveries AS d
    SET
        status = 'delivered',
        delivered_at = now(),
        attempts = d.attempts + 1,
        last_error = NULL,
        claimed_by = NULL,
        claimed_until = NULL
    WHERE
        d.channel = complete_alert_deliveries.delivery_channel
        AND d.alert_id = ANY(complete_alert_deliveries.alert_ids)
        AND d.status = 'pending';
    GET DIAGNOSTICS marked = ROW_COUNT;

    UPDATE guard.alerts AS a
    SET delivered_at = now()
    WHERE
        a.id = ANY(complete_alert_deliveries.alert_ids)
        AND a.delivered_at IS NULL
        AND NOT EXISTS (
            SELECT
            FROM guard.alert_deliveries AS o
            WHERE o.alert_id = a.id AND o.status <> 'delivered'
        );
    RETURN marked;
END;
$$;

-- Record a failed send: count the attempt, keep the error, release the claim and schedule the
-- next attempt with exponential backoff (base * 2^(attempts - 1), capped), or give up as failed
-- after max_attempts. Returns the rows that gave up.
CREATE FUNCTION guard.fail_alert_deliveries(
    delivery_channel text,
    alert_ids bigint[],
    error text,
    backoff_base_seconds double precision,
    backoff_max_seconds double precision,
    max_attempts integer
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    gave_up integer;
BEGIN
    UPDATE guard.alert_deliveries AS d
    SET
        attempts = d.attempts + 1,
        last_error = pg_catalog.left(fail_alert_deliveries.error, 500),
        claimed_by = NULL,
        claimed_until = NULL,
        status = CASE
            WHEN d.attempts + 1 >= fail_alert_deliveries.max_attempts THEN 'failed'
            ELSE 'pending'
        END,
        next_attempt_at = now() + make_interval(
            secs => least(
                fail_alert_deliveries.backoff_max_seconds,
                fail_alert_deliveries.backoff_base_seconds * power(2::double precision, d.attempts)
            )
        )
    WHERE
        d.channel = fail_alert_deliveries.delivery_channel
        AND d.alert_id = ANY(fail_alert_deliveries.alert_ids)
        AND d.status = 'pending';

    SELECT count(*)::integer INTO gave_up
    FROM guard.alert_deliveries AS d
    WHERE
        d.channel = fail_alert_deliveries.delivery_channel
        AND d.alert_id = ANY(fail_alert_deliveries.alert_ids)
        AND d.status = 'failed';
    RETURN gave_up;
END;
$$;

-- Give back claims a dispatcher holds but did not send (graceful shutdown): the rows become
-- due again at once for any dispatcher. Returns the rows released.
CREATE FUNCTION guard.release_alert_deliveries(delivery_channel text, worker text)
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
        AND d.claimed_by = release_alert_deliveries.worker
        AND d.status = 'pending';
    GET DIAGNOSTICS released = ROW_COUNT;
    RETURN released;
END;
$$;
