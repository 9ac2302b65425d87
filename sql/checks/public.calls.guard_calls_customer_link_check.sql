-- I2: a linked customer has a complete link; no customer means unlinked or anonymous.
-- coalesce(..., FALSE): a CHECK passes on NULL, and a NULL status must fail.
ALTER TABLE public.calls ADD CONSTRAINT guard_calls_customer_link_check
CHECK (
    coalesce(
        CASE
            WHEN customer_id IS NOT NULL
                THEN
                    customer_link_status = 'linked'
                    AND customer_linked_at IS NOT NULL
                    AND customer_link_method IS NOT NULL
                    AND customer_link_confidence IS NOT NULL
            ELSE customer_link_status IN ('unlinked', 'anonymous')
        END,
        FALSE
    )
);
