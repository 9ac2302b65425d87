-- I1: a call has a direction, inbound or outbound: the cast to guard.call_direction refuses any
-- other value. `direction IS NOT NULL` is written out because a validated CHECK of that form is
-- what lets PostgreSQL set NOT NULL on a large adopted table without a scan (the cast passes a
-- NULL through).
ALTER TABLE public.calls ADD CONSTRAINT guard_calls_direction_check
CHECK (direction IS NOT NULL AND (direction::guard.call_direction) IS NOT NULL);

ALTER TABLE public.calls ALTER COLUMN direction SET NOT NULL;
