-- I2: link confidence is a percentage.
ALTER TABLE public.calls ADD CONSTRAINT guard_calls_link_confidence_range
CHECK (customer_link_confidence BETWEEN 0 AND 100);
