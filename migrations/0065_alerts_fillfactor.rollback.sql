-- Rollback of 0065_alerts_fillfactor: the default fillfactor again, for pages written from then on.
ALTER TABLE guard.alerts RESET (fillfactor);
