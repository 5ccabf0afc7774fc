#!/usr/bin/env bash
# Start the local PostgreSQL and RabbitMQ if they are not answering (CI machines, fresh shells).
set -euo pipefail

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
fi

if ! rabbitmqctl -q status >/dev/null 2>&1; then
    echo "starting RabbitMQ"
    rabbitmq-server -detached
fi
# A node may be up with its application stopped (e.g. after an interrupted fault test).
rabbitmqctl -q start_app >/dev/null 2>&1 || true
rabbitmqctl -q await_startup
# The management HTTP API (queue policies, depths) and the Prometheus endpoint (port 15692).
rabbitmq-plugins -q enable rabbitmq_management rabbitmq_prometheus >/dev/null

for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
done
pg_isready -h 127.0.0.1 -p 5432
