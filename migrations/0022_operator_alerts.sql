-- Operator alerts. Resolved notifications: a channel that opts in (`guard watch --resolved
-- CHANNEL`) is told once when a delivered alert resolves (alert_deliveries.resolved_sent_at; an
-- ADD COLUMN without a default changes the catalog only). Skipping a backlog without SQL
-- (`guard watch --skip-before TIME`): a delivery may be 'skipped', and every skip is recorded
-- (who, when, up to when, on which channels, how many) in guard.delivery_skips. The widened CHECK
-- is added NOT VALID and validated by 0022a_operator_alerts_validate, so this migration holds the
-- ACCESS EXCLUSIVE lock on the delivery table (catalog only, under the migrator's lock_timeout
-- and retries) without scanning.

-- One statement, so no moment without the CHECK; the new one accepts every value the old one did.
ALTER TABLE guard.alert_deliveries
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT alert_deliveries_status_check,
ADD CONSTRAINT alert_deliveries_status_check
CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')) NOT VALID;

-- One row per `guard watch --skip-before`: the audit of deliveries an operator chose not to send.
CREATE TABLE guard.delivery_skips (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    skipped_at timestamptz NOT NULL DEFAULT now(),
    skipped_by text NOT NULL CHECK (skipped_by <> ''),
    database_role text NOT NULL DEFAULT current_user,
    seen_before timestamptz NOT NULL,
    channels text[] NOT NULL CHECK (cardinality(channels) > 0),
    deliveries integer NOT NULL CHECK (deliveries >= 0)
);

-- Mark skipped every pending delivery, on the given channels, of an alert last seen before
-- seen_before, and create skipped rows for such alerts the dispatcher has not queued yet (it
-- queues on its next round, and would send them). An alert seen again since is current news and
-- stays pending; a delivery of an alert deleted by retention is skipped. A delivery claimed by a
-- running dispatcher is skipped too: that send may still happen, it is not marked delivered.
-- An alert then skipped or delivered on every channel gets guard.alerts.delivered_at. Records
-- the skip in guard.delivery_skips and returns the number of deliveries skipped.
CREATE FUNCTION guard.skip_alert_deliveries(
    seen_before timestamptz, channels text[], actor text
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    queued integer;
    marked integer;
BEGIN
    INSERT INTO guard.alert_deliveries (alert_id, channel, status)
    SELECT a.id, ch.channel, 'skipped'
    FROM guard.alerts AS a
    CROSS JOIN pg_catalog.unnest(skip_alert_deliveries.channels) AS ch (channel)
    WHERE a.delivered_at IS NULL AND a.last_seen_at < skip_alert_deliveries.seen_before
    ON CONFLICT (alert_id, channel) DO NOTHING;
    GET DIAGNOSTICS queued = ROW_COUNT;

    UPDATE guard.alert_deliveries AS d
    SET status = 'skipped', claimed_by = NULL, claimed_until = NULL
    WHERE
        d.status = 'pending'
        AND d.channel = ANY(skip_alert_deliveries.channels)
        AND NOT EXISTS (
            SELECT
            FROM guard.alerts AS a
            WHERE a.id = d.alert_id AND a.last_seen_at >= skip_alert_deliveries.seen_before
        );
    GET DIAGNOSTICS marked = ROW_COUNT;

    -- As guard.complete_alert_deliveries does: an alert with nothing left to send anywhere is
    -- done, so the dispatcher's enqueue stops re-reading a skipped backlog every round.
    UPDATE guard.alerts AS a
    SET delivered_at = now()
    WHERE
        a.delivered_at IS NULL
        AND a.last_seen_at < skip_alert_deliveries.seen_before
        AND NOT EXISTS (
            SELECT
            FROM guard.alert_deliveries AS o
            WHERE o.alert_id = a.id AND o.status NOT IN ('delivered', 'skipped')
        );

    INSERT INTO guard.delivery_skips (skipped_by, seen_before, channels, deliveries)
    VALUES (
        skip_alert_deliveries.actor,
        skip_alert_deliveries.seen_before,
        skip_alert_deliveries.channels,
        queued + marked
    );
    RETURN queued + marked;
END;
$$;

-- Record that alerts were sent on a channel (whoever holds the claim: the send happened), and
-- stamp guard.alerts.delivered_at on each alert whose every delivery row is now delivered (or
-- skipped by an operator: nothing more will be sent, and the enqueue stops looking at it).
-- Returns the delivery rows newly marked.
CREATE OR REPLACE FUNCTION guard.complete_alert_deliveries(delivery_channel text, alert_ids bigint[])
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
            WHERE o.alert_id = a.id AND o.status NOT IN ('delivered', 'skipped')
        );
    RETURN marked;
END;
$$;

-- Resolved notifications (opt-in per channel, `guard watch --resolved CHANNEL`): when the alert
-- of a delivered row resolves, the channel is told once; resolved_sent_at records it (or, for an
-- alert that was already resolved when it was delivered, the delivery time: nothing to announce).
ALTER TABLE guard.alert_deliveries ADD COLUMN resolved_sent_at timestamptz;

-- Hand one channel's due resolved notifications to one dispatcher for a lease: deliveries sent
-- while their alert was open whose alert has resolved since. SKIP LOCKED and the lease
-- (claimed_by, claimed_until on the delivered row) as in guard.claim_alert_deliveries; a claim
-- whose send failed is due again when its lease ends. Rows with nothing to announce (the alert
-- had resolved before it was delivered: that message said so) are settled first.
CREATE FUNCTION guard.claim_resolved_deliveries(
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
        a.last_seen_at,
        a.resolved_at
    FROM claimed AS c
    INNER JOIN guard.alerts AS a ON c.alert_id = a.id
    ORDER BY c.alert_id;
END;
$$;

-- Record that a channel was told these alerts resolved (whoever holds the claim: the send
-- happened). Returns the rows newly marked; a second call marks nothing (announced once).
CREATE FUNCTION guard.complete_resolved_deliveries(delivery_channel text, alert_ids bigint[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    marked integer;
BEGIN
    UPDATE guard.alert_deliveries AS d
    SET resolved_sent_at = now(), claimed_by = NULL, claimed_until = NULL
    WHERE
        d.channel = complete_resolved_deliveries.delivery_channel
        AND d.alert_id = ANY(complete_resolved_deliveries.alert_ids)
        AND d.status = 'delivered'
        AND d.resolved_sent_at IS NULL;
    GET DIAGNOSTICS marked = ROW_COUNT;
    RETURN marked;
END;
$$;

DO $$
BEGIN
    PERFORM guard.apply_grants();
END;
$$;
