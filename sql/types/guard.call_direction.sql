-- I1: a call's direction as a value: inbound or outbound. The CHECK guard_calls_direction_check on
-- public.calls casts direction to this domain, so the list of directions lives here.
-- Why a domain: PostgreSQL compiles a table's CHECK expressions again for every statement that
-- inserts or updates a row of the table, whatever columns it sets (the application's update of a
-- call's status too), while a domain's CHECK is compiled once per session and kept with the type.
-- Written out in the table's CHECKs, I1 and I2 cost a write of a call more than twice what they
-- cost cast to domains (docs/invariants.md, "Measured reasons for the shapes in sql/").
-- The domain's constraint has the table constraint's name: a refused write names it in the error
-- (SQLSTATE 23514, constraint guard_calls_direction_check).
-- A rule changes the way migration 0029 made these: a new domain and a new CHECK on calls, added
-- NOT VALID and validated. Never ALTER DOMAIN ... ADD or DROP CONSTRAINT here: the CHECK on
-- calls would stay validated while old rows were never checked against the new rule.
CREATE DOMAIN guard.call_direction AS text
CONSTRAINT guard_calls_direction_check CHECK (value IN ('inbound', 'outbound'));
