-- I2: the five columns of a call's customer link, as one value (the type under the domain
-- guard.customer_link, which says when such a value is a valid link).
CREATE TYPE guard.customer_link_fields AS (
    customer_id bigint,
    link_status text,
    linked_at timestamptz,
    link_method text,
    link_confidence numeric
);
