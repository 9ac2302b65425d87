-- I3: booking flags an application wrote that contradicted the appointments when written, to be
-- checked again when the writing transaction commits (guard.check_flags_at_commit). A row lives
-- only inside its transaction: it is inserted by the calls triggers and deleted at commit,
-- so no other session ever sees one.
-- UNLOGGED: nothing here must survive a crash (an interrupted transaction takes its rows with
-- it), so its writes skip the WAL.
-- written_by: the kind of statement that wrote the flags (the commit-time check turns it into the
-- audit's reason). The calls triggers run with the writer's rights, and the application may
-- insert call_ids and written_by only (guard.apply_grants): it cannot read, change or remove a
-- pending check, nor give an audit row a reason of its own.
CREATE UNLOGGED TABLE guard.flag_checks_at_commit (
    xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
    call_ids bigint[] NOT NULL,
    written_by text NOT NULL CHECK (written_by IN ('insert', 'update'))
);
