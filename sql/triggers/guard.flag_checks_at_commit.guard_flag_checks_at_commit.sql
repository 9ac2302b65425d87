-- I3: the application's contradicting writes of booking flags are judged when its transaction
-- commits (guard.check_flags_at_commit). `SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE`
-- judges them at the end of each statement instead.
DROP TRIGGER IF EXISTS guard_flag_checks_at_commit ON guard.flag_checks_at_commit;

CREATE CONSTRAINT TRIGGER guard_flag_checks_at_commit
AFTER INSERT ON guard.flag_checks_at_commit
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION guard.check_flags_at_commit();
