#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this one host, for tests and demos, sharing nothing with
# the machine's own RabbitMQ (rabbit@localhost, 5672/15672/25672): its own node names,
# ports, Erlang cookie, data, logs and configuration, all under one folder.
#
#   scripts/rabbitmq-cluster.sh up          start the three nodes, clustered (a fresh cluster if none)
#   scripts/rabbitmq-cluster.sh down        stop every node and delete the folder
#   scripts/rabbitmq-cluster.sh stop N      stop node N cleanly (1-3)
#   scripts/rabbitmq-cluster.sh kill N      SIGKILL node N: a crash, no goodbye to its peers
#   scripts/rabbitmq-cluster.sh start N     start node N again; it rejoins with its data
#   scripts/rabbitmq-cluster.sh status      each node: running or not, its ports; the cluster's members
#   scripts/rabbitmq-cluster.sh urls        the AMQP_URL listing every node (comma-separated)
#   scripts/rabbitmq-cluster.sh ctl N ARGS  rabbitmqctl ARGS against node N (also: queues N ARGS)
#
# Node N is pvN@localhost (PV_CLUSTER_NAME=pv), AMQP on 5680+N, management on 15680+N,
# Erlang distribution on 25680+N (PV_CLUSTER_PORT_BASE shifts all three). epmd on 4369 is
# shared with the machine's node, which is harmless: it only maps names to ports.
# PV_CLUSTER_DIR (default /tmp/pageviews-rabbitmq-cluster) holds everything.
set -euo pipefail

DIR="${PV_CLUSTER_DIR:-/tmp/pageviews-rabbitmq-cluster}"
NAME="${PV_CLUSTER_NAME:-pv}"
PORT_BASE="${PV_CLUSTER_PORT_BASE:-0}"
NODES=(1 2 3)
# The Debian package's /usr/sbin wrappers switch to the rabbitmq user and its HOME (and so
# the machine's cookie); the scripts they wrap take our environment as it is.
if [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
    BIN=/usr/lib/rabbitmq/bin
else
    BIN="$(dirname "$(command -v rabbitmq-server)")"
fi

amqp_port() { echo $((5680 + PORT_BASE + $1)); }
management_port() { echo $((15680 + PORT_BASE + $1)); }
dist_port() { echo $((25680 + PORT_BASE + $1)); }
node() { echo "${NAME}$1@localhost"; }

die() { echo "rabbitmq-cluster: $*" >&2; exit 1; }

check_node_number() {
    [[ "${1:-}" =~ ^[1-3]$ ]] || die "expected a node number 1-3, got '${1:-}'"
}

# The environment every command of ours runs with: node N's identity and files, our cookie.
node_env() {
    local n=$1 base="$DIR/node$1"
    export HOME="$DIR/home"  # .erlang.cookie: the cluster's, not the machine's
    export RABBITMQ_NODENAME="$(node "$n")"
    export RABBITMQ_NODE_PORT="$(amqp_port "$n")"
    export RABBITMQ_DIST_PORT="$(dist_port "$n")"
    export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"  # not /etc/rabbitmq's, which names rabbit@localhost
    export RABBITMQ_CONFIG_FILE="$base/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$base/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
    export RABBITMQ_MNESIA_BASE="$base/mnesia"
    export RABBITMQ_LOG_BASE="$base/log"
    export RABBITMQ_PID_FILE="$base/pid"
    export RABBITMQ_PLUGINS_EXPAND_DIR="$base/plugins-expand"
    # The CLI's own distribution ports, away from the range the machine's rabbitmqctl uses.
    export RABBITMQ_CTL_DIST_PORT_MIN=35700
    export RABBITMQ_CTL_DIST_PORT_MAX=35799
}

ctl() {
    local n=$1
    shift
    (node_env "$n" && "$BIN/rabbitmqctl" -n "$(node "$n")" "$@")
}

queues_ctl() {
    local n=$1
    shift
    (node_env "$n" && "$BIN/rabbitmq-queues" -n "$(node "$n")" "$@")
}

running() {
    ctl "$1" -q ping >/dev/null 2>&1
}

write_files() {
    mkdir -p "$DIR/home"
    if [[ ! -f "$DIR/home/.erlang.cookie" ]]; then
        head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$DIR/home/.erlang.cookie"
        chmod 400 "$DIR/home/.erlang.cookie"
    fi
    : >"$DIR/rabbitmq-env.conf"
    echo "[rabbitmq_management]." >"$DIR/enabled_plugins"
    local n
    for n in "${NODES[@]}"; do
        mkdir -p "$DIR/node$n/log"
        echo "[]." >"$DIR/node$n/advanced.config"
        {
            echo "listeners.tcp.local = 127.0.0.1:$(amqp_port "$n")"
            echo "management.tcp.ip = 127.0.0.1"
            echo "management.tcp.port = $(management_port "$n")"
            echo "loopback_users.guest = true"
            # Nodes 2 and 3 join node 1 the first time they boot (a blank node looks for
            # peers; one that already has data rejoins its own cluster and ignores this).
            if [[ $n != 1 ]]; then
                echo "cluster_formation.peer_discovery_backend = classic_config"
                echo "cluster_formation.classic_config.nodes.1 = $(node 1)"
            fi
        } >"$DIR/node$n/rabbitmq.conf"
    done
}

launch() {
    local n=$1
    running "$n" && return 0
    rm -f "$DIR/node$n/pid"  # left by a killed node; a new one is written at boot
    (
        node_env "$n"
        # setsid: the node outlives this shell and is not in the caller's process group.
        # The launcher (rabbitmq-server's shell) lives exactly as long as the node.
        setsid "$BIN/rabbitmq-server" >>"$DIR/node$n/log/console.log" 2>&1 </dev/null &
        echo $! >"$DIR/node$n/launcher.pid"
    )
}

await() {
    # The AMQP listener opens last in a node's boot, so a connection means the node is up.
    # (Cheaper than `rabbitmqctl await_startup`: each CLI call starts an Erlang VM, >1 s here.)
    # RabbitMQ 3.10 nodes restarted at the same moment can fail their feature-flag sync with
    # each other (`incompatible_feature_flags ... badmap`) and exit: such a node is started
    # again, by then its peers are far enough along.
    local n=$1 _ relaunched=0
    for _ in $(seq 1 1800); do
        (: </dev/tcp/127.0.0.1/"$(amqp_port "$n")") 2>/dev/null && return 0
        if ! kill -0 "$(cat "$DIR/node$n/launcher.pid" 2>/dev/null || echo 0)" 2>/dev/null; then
            ((relaunched++ < 3)) || break
            echo "rabbitmq-cluster: node $(node "$n") exited while starting; starting it again" >&2
            launch "$n"
        fi
        sleep 0.1
    done
    die "node $(node "$n") did not start; see $DIR/node$n/log/"
}

cmd_up() {
    write_files
    local fresh=true
    [[ -d "$DIR/node1/mnesia" ]] && fresh=false
    if $fresh; then
        # Node 1 first, so that 2 and 3 find it when they look for peers on their first boot.
        launch 1
        await 1
        launch 2
        launch 3
    else
        # Existing data: start all at once; each waits for the peers it last saw.
        local n
        for n in "${NODES[@]}"; do launch "$n"; done
    fi
    for n in "${NODES[@]}"; do await "$n"; done
    local members
    members="$(ctl 1 -q eval 'length(rabbit_nodes:all()).' 2>/dev/null || echo 0)"
    [[ "$members" == 3 ]] || die "node 1 sees $members cluster members, expected 3"
    echo "up: $(urls)"
}

stop_node() {
    local n=$1
    running "$n" || return 0
    local pid
    pid="$(cat "$DIR/node$n/pid" 2>/dev/null || true)"
    ctl "$n" -q stop >/dev/null 2>&1 || true
    wait_gone "$n" "$pid"
}

wait_gone() {
    local n=$1 pid=$2 _
    for _ in $(seq 1 300); do
        if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "node $(node "$n") (pid $pid) did not exit"
}

cmd_kill() {
    local n=$1 pid
    pid="$(cat "$DIR/node$n/pid" 2>/dev/null || true)"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || die "node $(node "$n") is not running"
    kill -9 "$pid"
    wait_gone "$n" "$pid"
    rm -f "$DIR/node$n/pid"
}

cmd_down() {
    [[ -d "$DIR" ]] || return 0
    local n pids=()
    for n in "${NODES[@]}"; do
        # A fast end: the data is deleted next, so nothing needs a clean shutdown.
        pids+=("$(cat "$DIR/node$n/pid" 2>/dev/null || true)")
    done
    for n in "${NODES[@]}"; do
        local pid="${pids[$((n - 1))]}"
        [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true
    done
    for n in "${NODES[@]}"; do wait_gone "$n" "${pids[$((n - 1))]}"; done
    rm -rf "$DIR"
    echo "down"
}

cmd_status() {
    local n
    for n in "${NODES[@]}"; do
        local state=stopped
        running "$n" && state=running
        echo "node $n $(node "$n") $state amqp=$(amqp_port "$n") management=$(management_port "$n") dist=$(dist_port "$n") pid=$(cat "$DIR/node$n/pid" 2>/dev/null || echo -)"
    done
    for n in "${NODES[@]}"; do
        if running "$n"; then
            echo "cluster members (as node $n sees them): running $(ctl "$n" -q eval 'rabbit_nodes:all_running().' | tr -d '\n') of $(ctl "$n" -q eval 'rabbit_nodes:all().' | tr -d '\n')"
            return 0
        fi
    done
}

urls() {
    local n out=()
    for n in "${NODES[@]}"; do out+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2F"); done
    (IFS=,; echo "${out[*]}")
}

main() {
    local command="${1:-}"
    shift || true
    case "$command" in
        up) cmd_up ;;
        down) cmd_down ;;
        stop) check_node_number "${1:-}"; stop_node "$1" ;;
        kill) check_node_number "${1:-}"; cmd_kill "$1" ;;
        start) check_node_number "${1:-}"; write_files; launch "$1"; await "$1" ;;
        status) cmd_status ;;
        urls) urls ;;
        ctl) check_node_number "${1:-}"; ctl "$@" ;;
        queues) check_node_number "${1:-}"; queues_ctl "$@" ;;
        *) die "usage: $0 up|down|stop N|kill N|start N|status|urls|ctl N ARGS|queues N ARGS" ;;
    esac
}

main "$@"
