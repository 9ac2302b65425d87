-- I1: a call has a direction, inbound or outbound. The CHECK is what lets NOT NULL be set on a
-- large adopted table without a scan (PostgreSQL uses a validated CHECK as proof).
ALTER TABLE public.calls ADD CONSTRAINT guard_calls_direction_check
CHECK (direction IS NOT NULL AND direction IN ('inbound', 'outbound'));

ALTER TABLE public.calls ALTER COLUMN direction SET NOT NULL;
