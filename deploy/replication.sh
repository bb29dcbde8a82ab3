#!/bin/sh
# Run once by the postgres image when it creates the database: let the streaming standby
# (docker-compose.yml: postgres-replica) connect for replication with the same password.
set -e
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
