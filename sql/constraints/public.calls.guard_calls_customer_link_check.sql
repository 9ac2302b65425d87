-- I2: the five customer-link columns of a call make a valid link: the cast to
-- guard.customer_link refuses any other combination (and a confidence outside 0-100).
-- IS DISTINCT FROM NULL is true for every value the cast lets through; IS NOT NULL would ask
-- whether every field of the link is set.
ALTER TABLE public.calls ADD CONSTRAINT guard_calls_customer_link_check
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
);
