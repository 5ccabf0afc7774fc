#!/usr/bin/env bash
# A PostgreSQL streaming replica of the local primary, on this host, for tests and demos:
# PostgreSQL's own replication (pg_basebackup + a standby that streams WAL), nothing of ours.
#
#   scripts/pg-replica.sh up       create the replica (if missing) and start it
#   scripts/pg-replica.sh down     stop and delete the replica; undo the pg_hba.conf line if we added it
#   scripts/pg-replica.sh stop     stop the replica (its data stays)
#   scripts/pg-replica.sh start    start it again; it catches up from the primary
#   scripts/pg-replica.sh status   running or not, in recovery or not, bytes behind the primary
#   scripts/pg-replica.sh url      the REPORT_DATABASE_URL of the replica (database pageviews)
#
# PV_REPLICA_NAME (default pvreplica) and PV_REPLICA_PORT (default 5439) name the Debian
# cluster (pg_createcluster); PV_PRIMARY_PORT (default 5432) is the primary, reached as the
# postgres user over 127.0.0.1. Runs as root (pg_createcluster) or as postgres.
#
# The primary must accept replication connections. If its pg_hba.conf has no rule for them
# from 127.0.0.1, `up` appends one (marked, trust, for user postgres only) and reloads the
# primary's configuration (SIGHUP: no restart, no dropped connection); `down` removes it
# again unless another replica still streams from the primary.
set -euo pipefail

NAME="${PV_REPLICA_NAME:-pvreplica}"
PORT="${PV_REPLICA_PORT:-5439}"
PRIMARY_PORT="${PV_PRIMARY_PORT:-5432}"
VERSION="$(pg_lsclusters --no-header | awk -v p="$PRIMARY_PORT" '$3 == p {print $1; exit}')"
HBA_MARK="# pageviews scripts/pg-replica.sh"
HBA_LINE="host replication postgres 127.0.0.1/32 trust $HBA_MARK"

die() { echo "pg-replica: $*" >&2; exit 1; }
[[ -n "$VERSION" ]] || die "no PostgreSQL cluster on port $PRIMARY_PORT (pg_lsclusters)"

as_postgres() {
    if [[ "$(id -un)" == postgres ]]; then "$@"; else runuser -u postgres -- "$@"; fi
}

primary_sql() {
    psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -Atqc "$1"
}

replica_sql() {
    psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atqc "$1"
}

exists() {
    pg_lsclusters --no-header | awk -v v="$VERSION" -v n="$NAME" '$1 == v && $2 == n {found=1} END {exit !found}'
}

allow_replication() {
    local allowed
    allowed="$(primary_sql "SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database)
        AND ('postgres' = ANY(user_name) OR 'all' = ANY(user_name)) AND auth_method = 'trust'
        AND (type = 'local' OR address = '127.0.0.1' OR address = 'all')
        AND (type <> 'local')")"
    [[ "$allowed" != 0 ]] && return 0
    local hba
    hba="$(primary_sql "SHOW hba_file")"
    echo "pg-replica: allowing replication from 127.0.0.1 in $hba and reloading the primary (no restart)"
    echo "$HBA_LINE" >>"$hba"
    primary_sql "SELECT pg_reload_conf()" >/dev/null
    # The reload is asynchronous: wait until the rules in force include the new line.
    local _
    for _ in $(seq 1 50); do
        [[ "$(primary_sql "SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database) AND error IS NULL")" != 0 ]] && return 0
        sleep 0.1
    done
    die "the primary did not take the replication rule in $hba"
}

forget_replication_rule() {
    local hba
    hba="$(primary_sql "SHOW hba_file" 2>/dev/null)" || return 0
    # Another replica (a parallel test run's) may still stream through the rule: keep it then.
    if [[ "$(primary_sql "SELECT count(*) FROM pg_stat_replication")" != 0 ]]; then
        return 0
    fi
    if grep -qF "$HBA_MARK" "$hba"; then
        sed -i "\\|$HBA_MARK|d" "$hba"
        primary_sql "SELECT pg_reload_conf()" >/dev/null
        echo "pg-replica: removed our replication rule from $hba (reloaded)"
    fi
}

create() {
    local data="/var/lib/postgresql/$VERSION/$NAME"
    pg_createcluster "$VERSION" "$NAME" -p "$PORT" -d "$data" >/dev/null
    # Debian writes its settings under /etc; the data directory is replaced by a copy of the primary's.
    cat >>"/etc/postgresql/$VERSION/$NAME/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
hot_standby = on
# Reports are long reads; let them finish rather than be cancelled by replayed cleanup.
hot_standby_feedback = on
EOF
    # A replica answers whom its primary answers: the same authentication rules.
    cp "$(primary_sql "SHOW hba_file")" "/etc/postgresql/$VERSION/$NAME/pg_hba.conf"
    find "$data" -mindepth 1 -delete  # pg_basebackup fills an empty directory (the parent may not be ours to write)
    # -R writes standby.signal and primary_conninfo; application_name names us in pg_stat_replication.
    as_postgres pg_basebackup -d "host=127.0.0.1 port=$PRIMARY_PORT user=postgres application_name=$NAME" \
        -D "$data" -X stream -R -c fast
}

wait_ready() {
    local _
    for _ in $(seq 1 300); do
        if [[ "$(replica_sql "SELECT pg_is_in_recovery()" 2>/dev/null)" == t ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "the replica on port $PORT did not come up in recovery; see /var/log/postgresql/postgresql-$VERSION-$NAME.log"
}

wait_streaming() {
    local _
    for _ in $(seq 1 300); do
        # Connected is enough: `catchup` (replaying what was written during the copy) turns
        # into `streaming` by itself, later on a busy primary.
        [[ "$(primary_sql "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$NAME'")" != 0 ]] && return 0
        sleep 0.1
    done
    die "the replica is up but not connected to the primary; see /var/log/postgresql/postgresql-$VERSION-$NAME.log"
}

cmd_up() {
    allow_replication
    exists || create
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" start 2>/dev/null || true
    wait_ready
    wait_streaming
    echo "up: $(url)"
}

cmd_down() {
    if exists; then
        pg_dropcluster --stop "$VERSION" "$NAME"
    fi
    forget_replication_rule
    echo "down"
}

cmd_status() {
    if ! exists; then
        echo "replica $NAME: none"
        return 0
    fi
    pg_lsclusters --no-header | awk -v v="$VERSION" -v n="$NAME" '$1 == v && $2 == n {print "replica " n ": port " $3 " " $4}'
    replica_sql "SELECT 'in recovery: ' || pg_is_in_recovery()" 2>/dev/null || true
    primary_sql "SELECT 'streaming: ' || state || ', bytes behind: ' || pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)
                 FROM pg_stat_replication WHERE application_name = '$NAME'"
}

url() {
    echo "postgresql://postgres@127.0.0.1:$PORT/pageviews"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    stop) pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" stop -m fast ;;
    start) pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" start; wait_ready; wait_streaming ;;
    status) cmd_status ;;
    url) url ;;
    *) die "usage: $0 up|down|stop|start|status|url" ;;
esac
