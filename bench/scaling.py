"""python -m bench.scaling: how far one PostgreSQL primary goes, for docs/SCALING.md (issue 16).

- Flush throughput with 1, 2 and 4 workers: a backlog of single-view messages (the worst
  case: one ledger row per view) published with the workers stopped, then drained. Views/s
  and rows/s (page_views rows inserted or updated, from pg_stat_user_tables) over the steady
  middle of the drain, and the CPU of the workers and of their PostgreSQL backends.
- The cost of the exactly-once ledger: the same drain with EXACTLY_ONCE off; the difference
  per applied_messages row, in backend CPU and in wall-clock time.
- With --cluster-url (scripts/rabbitmq-cluster.sh urls): confirmed messages/s into a quorum
  queue with three replicas (all three nodes on this host's two cores), beside the same
  on the single node of --amqp-url.

The machine is shared: figures are noisy, and each line records the load average before it.
One JSON line per measurement goes to bench/scaling.jsonl and to stdout.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from typing import Any

from sqlalchemy import text

from bench import BENCH_DIR, broker_ceiling
from bench.context import Run, git_commit, machine, utc_now_iso
from bench.drain import _publish_backlog
from bench.processes import CpuMeter
from bench.workload import page
from common import logging as structured_logging
from common import messages
from common.broker import BrokerAdmin, Topology, connection_parameters
from common.logging import fields
from common.timeutil import hour_start_epoch, utc_now
from tests.helpers import wait_for

log = logging.getLogger("bench")

RESULTS = BENCH_DIR / "scaling.jsonl"
STEADY_FROM, STEADY_TO = 0.1, 0.9
ROWS_WRITTEN = text(
    "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables WHERE relname LIKE 'page_views%'"
)
WORKER_BACKENDS = text(
    "SELECT pid FROM pg_stat_activity WHERE application_name = 'pageviews-worker' AND datname = current_database()"
)
_TICKS = os.sysconf("SC_CLK_TCK")


def flush_throughput(run: Run, workers: int, messages: int, exactly_once: bool = True) -> dict[str, Any]:
    """Drain a backlog of `messages` single-view messages with `workers` workers."""
    scenario = f"scaling-w{workers}" + ("" if exactly_once else "-eo-off")
    settings = run.settings_for(scenario, workers=workers, exactly_once=exactly_once)
    run.reset_tables()
    try:
        _publish_backlog(run, settings, messages)
        rows_before = _scalar(run, ROWS_WRITTEN)
        children = run.start_workers(settings)
        meter = CpuMeter({"workers": [child.pid for child in children]}).start()
        samples: list[tuple[float, int]] = []

        def drained() -> bool:
            total = run.total_views(include_sentinels=True)
            samples.append((time.monotonic(), total))
            return total >= messages

        wait_for(drained, timeout=900, interval=0.1, what=f"{messages} views counted")
        backend_cpu_s = _cpu_seconds(_pids(run))  # alive until the workers stop: all their work is in here
        cpu = meter.stop()
        run.stop(*children)
    finally:
        run.delete_topology(settings)
    rows = _settled_rows(run, rows_before)
    seconds = _steady_seconds(samples, messages)
    steady_share = STEADY_TO - STEADY_FROM
    return {
        "scenario": scenario,
        "workers": workers,
        "exactly_once": exactly_once,
        "messages": messages,
        "views": messages,
        "rows_written": rows,
        "views_per_row": round(messages / rows, 2) if rows else None,
        "steady_views_per_s": round(steady_share * messages / seconds) if seconds else None,
        "steady_rows_per_s": round(steady_share * rows / seconds) if seconds else None,
        "worker_backend_cpu_s": round(backend_cpu_s, 2),
        "backend_cpu_us_per_view": round(1e6 * backend_cpu_s / messages, 1),
        "views_per_backend_cpu_s": round(messages / backend_cpu_s) if backend_cpu_s else None,
        "cpu": cpu,
    }


def ledger_cost(on: dict[str, Any], off: dict[str, Any]) -> dict[str, Any]:
    """What recording one message id costs, from a drain with the ledger and one without."""
    per_view_on, per_view_off = 1 / on["steady_views_per_s"], 1 / off["steady_views_per_s"]
    return {
        "scenario": "ledger-cost",
        "workers": on["workers"],
        "backend_cpu_us_per_ledger_row": round(on["backend_cpu_us_per_view"] - off["backend_cpu_us_per_view"], 1),
        "wall_us_per_ledger_row": round(1e6 * (per_view_on - per_view_off), 1),
        "throughput_with_ledger_pct": round(100 * on["steady_views_per_s"] / off["steady_views_per_s"]),
    }


def broker_replication(run: Run, cluster_url: str, seconds: float) -> dict[str, Any]:
    """Pipelined confirmed publishing into a partition-like quorum queue: one node, then three replicas."""
    figures: dict[str, Any] = {"scenario": "broker-replication", "seconds": seconds}
    for label, url in (("single_node", run.amqp_url), ("three_replicas", cluster_url)):
        settings = run.settings_for(f"scaling-broker-{label}").replace(amqp_url=url)
        topology = Topology(settings.queue_prefix, 1, settings.delivery_limit)
        params = connection_parameters(url)[0]
        try:
            with BrokerAdmin(url) as admin:
                admin.declare(topology)
            # No CPU figure: every RabbitMQ node on this host is a beam.smp, the machine's and the cluster's alike.
            figures[f"{label}_msgs_per_s"] = round(broker_ceiling._pipelined(params, topology.partition_queue(0), _body(), seconds))
        finally:
            with BrokerAdmin(url) as admin:
                admin.delete_topology(topology)
    return figures


def _body() -> bytes:
    """A message the size of the API's message for one single view."""
    return messages.encode(messages.new_message_id(), [(page(1234), hour_start_epoch(utc_now()), 1)])


def _scalar(run: Run, statement: Any) -> int:
    with run.engine.connect() as connection:
        return int(connection.execute(statement).scalar())


def _pids(run: Run) -> list[int]:
    with run.engine.connect() as connection:
        return [int(pid) for pid in connection.execute(WORKER_BACKENDS).scalars()]


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                values = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # PostgreSQL runs elsewhere or the backend is gone
        total += (int(values[11]) + int(values[12])) / _TICKS
    return total


def _settled_rows(run: Run, before: int) -> int:
    """Rows written since `before`, once the exited backends' statistics have reached the shared counters."""
    last = -1
    for _ in range(50):
        now = _scalar(run, ROWS_WRITTEN) - before
        if now == last:
            return now
        last = now
        time.sleep(0.2)
    return last


def _steady_seconds(samples: list[tuple[float, int]], count: int) -> float | None:
    """Seconds from STEADY_FROM to STEADY_TO of the views counted (worker start-up and the last flush left out)."""
    def crossing(share: float) -> float | None:
        return next((at for at, total in samples if total >= share * count), None)

    begin, end = crossing(STEADY_FROM), crossing(STEADY_TO)
    return end - begin if begin is not None and end is not None and end > begin else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=60_000, help="backlog per drain (single-view messages)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to drain with")
    parser.add_argument("--ledger-workers", type=int, default=2, help="worker count of the ledger on/off pair (0: skip)")
    parser.add_argument("--database-server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--cluster-url", help="AMQP_URL of a three-node cluster (scripts/rabbitmq-cluster.sh urls)")
    parser.add_argument("--broker-seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    structured_logging.configure("info")
    run = Run(quick=True, database_server_url=args.database_server, amqp_url=args.amqp_url)
    header = {"date": utc_now_iso(), "commit": git_commit(), "machine": machine(), "run": run.run_id}
    try:
        run.create_database()
        drained = {}
        for workers in (int(w) for w in args.workers.split(",") if w):
            drained[workers] = _record(header, flush_throughput(run, workers, args.messages))
        if args.ledger_workers:
            on = drained.get(args.ledger_workers) or _record(header, flush_throughput(run, args.ledger_workers, args.messages))
            off = _record(header, flush_throughput(run, args.ledger_workers, args.messages, exactly_once=False))
            _record(header, ledger_cost(on, off))
        if args.cluster_url:
            _record(header, broker_replication(run, args.cluster_url, args.broker_seconds))
    finally:
        run.close()
    return 0


def _record(header: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    line = {**header, "loadavg": [round(x, 2) for x in os.getloadavg()], **figures}
    with open(RESULTS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    print(json.dumps(figures), flush=True)
    log.info("measured", extra=fields(scenario=figures["scenario"]))
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
