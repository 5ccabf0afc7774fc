#!/bin/sh
# Runs once, when the database container starts on an empty volume: the application's
# roles with their passwords (from secrets.env through docker-compose.yml). Their rights
# are granted by the migrations (common/db_roles.py), which find the roles here.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v api="$API_DB_PASSWORD" -v worker="$WORKER_DB_PASSWORD" -v cleaner="$CLEANER_DB_PASSWORD" <<'SQL'
CREATE ROLE pageviews_api LOGIN PASSWORD :'api';
CREATE ROLE pageviews_worker LOGIN PASSWORD :'worker';
CREATE ROLE pageviews_cleaner LOGIN PASSWORD :'cleaner';
SQL
