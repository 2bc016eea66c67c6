-- deploy/postgres-init.sql: run once by the postgres image when
-- docker-compose.yml's data volume is new, in the shoal database, as the
-- image's superuser. deploy/local does the same for the local cluster.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
