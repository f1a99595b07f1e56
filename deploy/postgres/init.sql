-- One database per chatvakt process (each service owns its data; no service
-- reads another's tables). Run by the postgres image on first start (compose
-- mounts it into /docker-entrypoint-initdb.d/) as the POSTGRES_USER, who
-- then owns the databases. For a PostgreSQL managed outside (Kubernetes),
-- run it once with psql as the application role:
--   psql "postgresql://chatvakt@HOST/postgres" -f deploy/postgres/init.sql
-- It is idempotent: existing databases are left alone. (The services also
-- create a missing database and migrate it at start.)

SELECT 'CREATE DATABASE chatvakt_queue ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'chatvakt_queue')\gexec

SELECT 'CREATE DATABASE chatvakt_chat ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'chatvakt_chat')\gexec

SELECT 'CREATE DATABASE chatvakt_coding ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'chatvakt_coding')\gexec

SELECT 'CREATE DATABASE chatvakt_escalation ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'chatvakt_escalation')\gexec

SELECT 'CREATE DATABASE chatvakt_gateway ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'chatvakt_gateway')\gexec
