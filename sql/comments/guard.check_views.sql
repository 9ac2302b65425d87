-- What BI tools show for every check view (guard.check_<check>, the built-in ones and those
-- registered by guard.register_check): the same nine columns in each, so their meaning is
-- written once, here, and the view's own comment is its check's description. A registered
-- view gets them at the next `guard db apply` that applies anything.
DO $$
DECLARE
    check_row record;
    column_meaning record;
BEGIN
    FOR check_row IN
        SELECT k.id, k.description, k.check_view
        FROM guard.checks AS k
        WHERE k.check_view IS NOT NULL AND to_regclass(format('guard.%I', k.check_view)) IS NOT NULL
        ORDER BY k.id
    LOOP
        EXECUTE format(
            'COMMENT ON VIEW guard.%I IS %L',
            check_row.check_view,
            format(
                'one row per row that breaks check `%s` now: %s',
                check_row.id,
                lower(left(check_row.description, 1))
                || rtrim(substr(check_row.description, 2), '.')
            )
        );
        FOR column_meaning IN
            SELECT m.column_name, m.meaning
            FROM (VALUES
                ('check_id', 'the check (`guard.checks.id`, the view''s name without `check_`)'),
                ('company_id', 'the company the row belongs to'),
                (
                    'entity_type',
                    'what is wrong: `call`, `appointment`, `booking_attempt`, or `company` (the'
                    || ' failure-rate anomaly, the activity monitors)'
                ),
                ('entity_id', 'the id of that call, appointment, booking attempt or company'),
                (
                    'call_id',
                    'the call concerned, when there is one (NULL for an orphaned appointment)'
                ),
                ('severity', '`critical`, `high`, `medium`, `low`'),
                (
                    'observed_at',
                    'when the row was written (the call''s or appointment''s `created_at`; `now()`'
                    || ' for the anomaly)'
                ),
                ('detail', 'jsonb: the facts that break the rule (never phone numbers)'),
                ('rule_id', 'the check''s rule (`guard.rules.id`: `I1_call_direction` …)')
            ) AS m (column_name, meaning)
            INNER JOIN pg_catalog.pg_attribute AS a
                ON
                    a.attrelid = format('guard.%I', check_row.check_view)::regclass
                    AND a.attname = m.column_name
                    AND NOT a.attisdropped
        LOOP
            EXECUTE format(
                'COMMENT ON COLUMN guard.%I.%I IS %L',
                check_row.check_view, column_meaning.column_name, column_meaning.meaning
            );
        END LOOP;
    END LOOP;
END;
$$;
