-- Row-level security by company on guard.validation_metrics (see guard.create_tenant_isolation):
-- every role sees and writes only the rows of the companies bound to it; FORCE, so the owner too,
-- whose jobs pass by guard.validation_metrics.owner_maintenance.
SELECT guard.create_tenant_isolation('guard.validation_metrics');
