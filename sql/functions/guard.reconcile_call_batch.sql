-- I1, I2, I3, staged enforcement: bring the calls with from_id <= id < to_id in line with them,
-- so the NOT VALID constraints can be validated. Only what is safe is changed (a missing direction,
-- an incomplete customer link, flags derived from appointments); every change is audited.
-- An updated row is checked against every constraint, validated or not, so all of a row's
-- problems are fixed in one UPDATE, and rows holding a value no rule can decide (an unknown
-- direction, a confidence out of range) are not touched at all: validation then reports them
-- and they wait for a person (rule_name 'needs_review' counts them).
CREATE OR REPLACE FUNCTION guard.reconcile_call_batch(from_id bigint, to_id bigint)
RETURNS TABLE (rule_name text, corrected integer)
LANGUAGE plpgsql
SET search_path = pg_catalog
-- Like refresh_call_flags: JIT compilation of its large statements costs more than it saves.
SET jit = off
AS $$
DECLARE
    fixable_calls bigint[];
    directions_fixed integer;
    links_fixed integer;
    undecidable_rows integer;
BEGIN
    WITH batch AS (
        SELECT
            c.id,
            c.company_id,
            c.direction,
            c.customer_id,
            c.customer_link_status,
            c.customer_link_method,
            c.customer_link_confidence,
            c.customer_linked_at,
            (
                c.direction IS NOT NULL
                AND guard.normalised_direction(c.direction) NOT IN ('inbound', 'outbound')
            )
            OR coalesce(c.customer_link_confidence NOT BETWEEN 0 AND 100, FALSE) AS undecidable,
            c.direction IS DISTINCT FROM guard.normalised_direction(c.direction) AS direction_wrong,
            NOT guard.is_valid_customer_link(
                c.customer_id,
                c.customer_link_status,
                c.customer_linked_at,
                c.customer_link_method,
                c.customer_link_confidence
            ) AS link_wrong
        FROM public.calls AS c
        WHERE c.id >= from_id AND c.id < to_id
    ),

    to_fix AS (
        SELECT b.* FROM batch AS b
        WHERE NOT b.undecidable AND (b.direction_wrong OR b.link_wrong)
    ),

    -- The normalisers do the work: SET col = col fires the BEFORE ROW triggers of I1 and I2.
    fixed AS (
        UPDATE public.calls AS c
        SET direction = c.direction, customer_id = c.customer_id
        FROM to_fix AS t
        WHERE c.id = t.id
        RETURNING
            c.id,
            c.direction,
            c.customer_link_status,
            c.customer_link_method,
            c.customer_link_confidence,
            c.customer_linked_at
    ),

    audited AS (
        INSERT INTO guard.correction_audit (
            rule_id, company_id, entity_type, entity_id, before, after, reason
        )
        SELECT
            'I1_call_direction',
            t.company_id,
            'call',
            t.id,
            jsonb_build_object('direction', t.direction),
            jsonb_build_object('direction', f.direction),
            'legacy row: missing or unnormalised direction'
        FROM to_fix AS t INNER JOIN fixed AS f ON t.id = f.id
        WHERE t.direction_wrong
        UNION ALL
        SELECT
            'I2_customer_link',
            t.company_id,
            'call',
            t.id,
            jsonb_build_object(
                'customer_id', t.customer_id,
                'customer_link_status', t.customer_link_status,
                'customer_link_method', t.customer_link_method,
                'customer_link_confidence', t.customer_link_confidence,
                'customer_linked_at', t.customer_linked_at
            ),
            jsonb_build_object(
                'customer_id', t.customer_id,
                'customer_link_status', f.customer_link_status,
                'customer_link_method', f.customer_link_method,
                'customer_link_confidence', f.customer_link_confidence,
                'customer_linked_at', f.customer_linked_at
            ),
            'legacy row: incomplete customer link'
        FROM to_fix AS t INNER JOIN fixed AS f ON t.id = f.id
        WHERE t.link_wrong
        RETURNING rule_id
    )

    SELECT
        count(*) FILTER (WHERE a.rule_id = 'I1_call_direction'),
        count(*) FILTER (WHERE a.rule_id = 'I2_customer_link'),
        (SELECT count(*) FROM batch AS b WHERE b.undecidable)
    INTO directions_fixed, links_fixed, undecidable_rows
    FROM audited AS a;

    SELECT array_agg(c.id) INTO fixable_calls
    FROM public.calls AS c
    WHERE
        c.id >= from_id AND c.id < to_id
        AND NOT coalesce(
            c.customer_link_confidence NOT BETWEEN 0 AND 100
            OR c.direction NOT IN ('inbound', 'outbound'),
            FALSE
        );
    rule_name := 'I1_call_direction';
    corrected := directions_fixed;
    RETURN NEXT;
    rule_name := 'I2_customer_link';
    corrected := links_fixed;
    RETURN NEXT;
    rule_name := 'I3_appointment_flags';
    corrected := CASE
        WHEN fixable_calls IS NULL THEN 0
        ELSE guard.refresh_call_flags(
            fixable_calls, audit_reason => 'legacy row: flags contradicted the appointments'
        )
    END;
    RETURN NEXT;
    rule_name := 'needs_review';
    corrected := undecidable_rows;
    RETURN NEXT;
END;
$$;
