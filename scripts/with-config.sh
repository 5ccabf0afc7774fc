#!/usr/bin/env bash
# Run a command with the settings of config.env, as `make run` does: a variable already
# set in the environment wins over the file. For cron lines and one-off tools, e.g.
#   scripts/with-config.sh .venv/bin/python -m worker.cleaner --once
set -euo pipefail
cd "$(dirname "$0")/.."
while IFS= read -r line || [[ -n "$line" ]]; do
    [[ -z "$line" || "$line" == \#* ]] && continue
    key="${line%%=*}"
    [[ -v "$key" ]] || export "$key=${line#*=}"
done < config.env
exec "$@"
