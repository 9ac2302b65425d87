-- Rollback of 0031a_definitions_from_sql: the record of applied definitions goes; the
-- definitions themselves are those of release 0.2.0 again (`guard db rollback` restores them
-- from migrations/releases/0.2.0.definitions.json.gz as it reaches 0031_rules_and_checks).

DROP TABLE guard.definitions;
