"""`python -m bench.profile [--worker-class gthread|gevent]`: where one API process spends its CPU under load.

Starts the API and two workers with the bench's settings (a database and queues of its own),
loads POST /page-views/single with wrk's single script at 32 connections, and records one
gunicorn worker process with py-spy (`--gil`: only samples in which the process holds the GIL,
so its Python CPU time, whichever thread). Prints the functions by inclusive and by own share
of the samples, and leaves py-spy's raw stacks (for flamegraph.pl or speedscope) in the log
folder it names.
"""
from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import requests

from bench import wrk
from bench.context import Run
from bench.ingest import SINGLE_CONNECTIONS, base_url, cpu_groups
from bench.processes import CpuMeter, descendants
from bench.workload import PAGE_PREFIX, PAGES

WRK_S = 14
RECORD_AFTER_S = 2  # wrk's connections are up and the pools warm
RECORD_S = 8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--worker-class", choices=("gthread", "gevent"), default=None, help="default: API_WORKER_CLASS's default")
    parser.add_argument("--database", default="pageviews_bench_profile", help="dropped and recreated, then dropped")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    run = Run(quick=True, database_server_url="postgresql://postgres@127.0.0.1:5432/postgres", amqp_url="amqp://guest:guest@127.0.0.1:5672/%2F", database=args.database)
    try:
        run.create_database()
        changes = {} if args.worker_class is None else {"api_worker_class": args.worker_class}
        settings = run.settings_for("profile", **changes)
        api = run.start_api(settings)
        workers = run.start_workers(settings)
        run.wait_consuming(settings, workers)
        worker_pid = descendants(api.pid)[0]
        raw = run.log_dir / f"py-spy-{settings.api_worker_class}.txt"
        results: list[wrk.WrkResult] = []
        load = threading.Thread(
            target=lambda: results.append(
                wrk.run(base_url(settings), "single.lua", connections=SINGLE_CONNECTIONS, duration_s=WRK_S, args=[str(PAGES), PAGE_PREFIX])
            )
        )
        before = _histograms(base_url(settings))
        meter = CpuMeter(cpu_groups(api, workers)).start()
        load.start()
        threading.Event().wait(RECORD_AFTER_S)
        subprocess.run([py_spy, "record", "--gil", "--nonblocking", "-r", "200", "-d", str(RECORD_S), "-f", "raw", "-o", str(raw), "--pid", str(worker_pid)], check=True, capture_output=True)
        load.join()
        cpu = meter.stop({"wrk": results[0].cpu_s})
        after = _histograms(base_url(settings))
    finally:
        run.close()
    print(f"{settings.api_worker_class}: py-spy raw stacks in {raw}")
    print(where_the_time_goes(results[0], cpu, before, after))
    print(summary(raw, args.top))
    return 0


# The API's own histograms (sum, count) that split a request's time: all of it in the
# app (Flask's before_request to after_request), and the wait for RabbitMQ's confirm in it.
_HISTOGRAMS = {
    "in the app": ("pageviews_request_duration_seconds", {"endpoint": "single"}),
    "waiting for the confirm": ("pageviews_publish_confirm_seconds", {}),
}


def _histograms(url: str) -> dict[str, tuple[float, float]]:
    from prometheus_client.parser import text_string_to_metric_families

    samples = [sample for family in text_string_to_metric_families(requests.get(url + "/metrics", timeout=5).text) for sample in family.samples]
    found: dict[str, tuple[float, float]] = {}
    for label, (name, labels) in _HISTOGRAMS.items():
        chosen = [sample for sample in samples if all(sample.labels.get(k) == v for k, v in labels.items())]
        found[label] = (sum(s.value for s in chosen if s.name == name + "_sum"), sum(s.value for s in chosen if s.name == name + "_count"))
    return found


def where_the_time_goes(result: wrk.WrkResult, cpu: dict, before: dict, after: dict) -> str:
    """A request's mean time as wrk saw it, split by the API's histograms, and the CPU it cost each process group."""
    answered = result["posts_ok"] + result["posts_bad"] + result["health_ok"] + result["health_bad"]
    lines = [f"{result['posts_ok'] / result.post_seconds:.0f} POST/s at {SINGLE_CONNECTIONS} connections; wrk latency {result.latency_ms()}"]
    for label in _HISTOGRAMS:
        total = after[label][0] - before[label][0]
        count = after[label][1] - before[label][1]
        if count:
            lines.append(f"mean {label}: {1000 * total / count:.2f} ms over {count:.0f}")
    seconds = cpu["seconds"]
    per_request = {group: round(1000 * cores * seconds / answered, 3) for group, cores in cpu["cores_used"].items()}
    lines.append(f"CPU ms per request, by group: {per_request} (machine {cpu['machine_busy_pct']}% busy)")
    return "\n".join(lines)


def summary(raw: Path, top: int) -> str:
    """Inclusive and own shares of the samples, by function (file name without its folder)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = [_function(frame) for frame in stack.split(";")]
        for name in set(frames):
            inclusive[name] += samples
        own[frames[-1]] += samples
    lines = [f"{total} samples", "-- inclusive"]
    lines += [f"{100 * n / total:5.1f}% {name}" for name, n in inclusive.most_common(top)]
    lines += ["-- own"] + [f"{100 * n / total:5.1f}% {name}" for name, n in own.most_common(top // 2)]
    return "\n".join(lines)


def _function(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name


if __name__ == "__main__":
    sys.exit(main())
