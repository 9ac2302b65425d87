DROP TABLE guard.baseline_objects;

DROP TABLE guard.migration_checksums;

DROP SCHEMA guard;
