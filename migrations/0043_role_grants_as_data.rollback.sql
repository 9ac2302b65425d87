-- Rollback of 0043_role_grants_as_data: the table goes (guard.apply_grants of release 0.2.0,
-- restored with its definitions, lists the grants in its body).

DROP TABLE guard.role_grants;
