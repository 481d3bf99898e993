-- The monitoring store's database, beside the registry's (POSTGRES_DB: mlflow): both keep an
-- alembic_version table, so they cannot share one schema. Run once, at the first start.
CREATE DATABASE monitoring OWNER basketry;
