#!/usr/bin/env bash
# The Debian packages the tests need beyond the local services themselves:
#   postgresql-NN-hll    the hll extension (visitor sketches) for the local PostgreSQL
#   chromium, chromium-driver   the real browser the tracker and dashboard tests drive
#   docker-compose       checks docker-compose.yml without a Docker engine
#   prometheus           for promtool: checks deploy/prometheus (config, alert rules and their unit tests)
#                        and the dashboard's PromQL; the package also brings the server, which the tests do not use
set -euo pipefail
pg_major=$(ls /etc/postgresql | sort -n | tail -n 1)
packages=("postgresql-${pg_major}-hll" chromium chromium-driver docker-compose prometheus)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]}; install them as root (sudo $0)" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
