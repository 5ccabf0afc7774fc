"""The multi scenario: the sustained end-to-end rate of POST /page-views/multi, in views/s.

Sustained means accepted and flushed with nothing piling up in between. Two measures of
"piling up" are sampled once a second:

- the ready messages of the partition queues (passive queue_declare), as the issue asks;
- the backlog in views: views answered 2xx so far (the wrk script writes its running total
  every 0.1 s) minus views in the database. This one also sees messages the workers have
  taken but not yet flushed: each worker prefetches BATCH_SIZE messages per queue, and the
  API merges requests into large messages, so thousands of messages - millions of views -
  can wait in the workers while the ready count stays at zero.

Phase "open": wrk as fast as the answers come, for the multi duration. If its steady window
shows either measure growing, the accept rate is above what the system can flush; then
paced phases (each as long) offer a fixed request rate, rising while it is sustained (see
_paced_search), and the sustained figure is the fastest phase that was sustained.
"""
from __future__ import annotations

import bisect
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import wrk
from bench.context import Run
from bench.ingest import api_peak_rss, base_url, cpu_groups, exactness, post_figures, workers_peak_rss
from bench.processes import CpuMeter
from bench.workload import write_multi_bodies
from common.broker import BrokerAdmin
from common.config import Settings

CONNECTIONS = 32
WARM_UP_SHARE = 0.2  # of the POST phase, discarded before the steady window
# Over the steady window the backlog (accepted, not yet flushed) and the ready messages may
# grow by at most this share of the input rate: a rate, so the criterion is as strict for a
# 12-second quick window as for a 48-second full one. More than that, and it is not sustained.
GROWTH_ALLOWANCE = 0.02
PACE_SHARE = 0.9  # the first paced phase offers this share of the open phase's flush rate
PACED_STEPS = 3  # paced phases at most, each offering twice the one before
DRAIN_TIMEOUT_S = 1800  # an open phase can leave minutes of backlog behind


@dataclass(frozen=True)
class Sample:
    at: float  # wall-clock seconds when the database total was read
    ready: int  # messages ready in the partition queues
    views: int  # views in the database (sentinels excluded)
    applied: int  # rows of applied_messages: messages flushed so far
    query_ms: float  # how long reading the database took


class Sampler:
    """Samples queue depth and database totals once a second on a thread of its own."""

    def __init__(self, run: Run, settings: Settings, every_s: float = 1.0) -> None:
        self._run, self._settings, self._every = run, settings, every_s
        self._stop = threading.Event()
        self.samples: list[Sample] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        try:
            with BrokerAdmin(self._settings.amqp_url) as admin:
                next_at = time.monotonic()
                while not self._stop.is_set():
                    ready = self._run.queue_depth(self._settings, admin)
                    at, started = time.time(), time.monotonic()
                    views, applied = self._run.total_views(), self._run.applied_messages()
                    self.samples.append(Sample(at, ready, views, applied, (time.monotonic() - started) * 1000))
                    next_at += self._every
                    self._stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as exc:  # reported by the scenario, which then fails
            self.error = exc


class Accepted:
    """Views answered 2xx up to any moment, from the wrk threads' progress files."""

    def __init__(self, prefix: Path, threads: int) -> None:
        self._threads: list[tuple[list[float], list[int]]] = []
        for number in range(1, threads + 1):
            times, views = [], []
            path = Path(f"{prefix}{number}")
            if path.exists():
                for line in path.read_text().splitlines():
                    at, total, _posts = line.split()
                    times.append(float(at))
                    views.append(int(total))
            self._threads.append((times, views))

    def at(self, moment: float) -> int:
        total = 0
        for times, views in self._threads:
            index = bisect.bisect_right(times, moment)
            total += views[index - 1] if index else 0
        return total


def multi(run: Run) -> dict[str, Any]:
    settings = run.settings_for("multi")
    run.reset_tables()
    bodies_path = run.log_dir / "multi-bodies.jsonl"
    bodies = write_multi_bodies(bodies_path, random.Random(6))
    api = run.start_api(settings)
    workers = run.start_workers(settings)
    try:
        run.wait_consuming(settings, workers)
        groups = cpu_groups(api, workers)
        phases = {"open": _phase(run, settings, groups, "open", run.durations.multi_s, bodies_path, bodies, rate=0.0)}
        if not phases["open"]["sustained_valid"] and phases["open"].get("flush_views_per_s"):
            phases.update(_paced_search(run, settings, groups, bodies_path, bodies, phases["open"]))
        api_rss = api_peak_rss(api)
        worker_rss = workers_peak_rss(workers)
        dead = run.dead_lettered(settings)
    finally:
        run.stop(api, *workers)
        run.delete_topology(settings)
    # The fastest phase that was sustained (the open one, if it was, is the fastest of all).
    established = max((name for name, p in phases.items() if p.get("sustained_valid")), key=lambda n: phases[n]["sustained_views_per_s"], default=None)
    headline = phases[established] if established else phases["open"]
    return {
        "sustained_views_per_s": headline["sustained_views_per_s"] if established else None,
        "sustained_entries_per_s": headline["flush_entries_per_s"] if established else None,
        "sustained_valid": established is not None,
        "established_by": established,
        "open_accepted_views_per_s": phases["open"]["accepted_views_per_s"],
        "open_flush_views_per_s": phases["open"].get("flush_views_per_s"),
        "req_per_s": headline["req_per_s"],
        "p50_ms": headline["p50_ms"],
        "p99_ms": headline["p99_ms"],
        "non_2xx": sum(p["non_2xx"] for p in phases.values()),
        "exact": all(p["exact"] for p in phases.values()) if all(p["exact"] is not None for p in phases.values()) else None,
        "phases": phases,
        "connections": CONNECTIONS,
        "duration_s": run.durations.multi_s,
        "bodies": {**bodies, "views_per_entry": round(bodies["views_per_entry"], 3)},
        "api_peak_rss_mb": api_rss,
        "worker_peak_rss_mb": worker_rss,
        "dead_lettered": dead,
    }


def _paced_search(run: Run, settings: Settings, groups: dict[str, list[int]], bodies_path: Path, bodies: dict[str, Any], opened: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Paced phases searching for the fastest sustained rate (a lower bound of the true one).

    The first offers PACE_SHARE of the open phase's flush rate. After a sustained phase the
    next offers more (twice as much, but at most halfway to the lowest rate that failed);
    after one that is not sustained, 80% of what it managed to flush. At most PACED_STEPS;
    the search ends once a sustained rate is within 10% of one that failed.
    Under full load the API takes most of the two cores, so the workers flush faster when
    the load is paced; the open phase's flush rate alone would understate what is sustained.
    """
    views_per_body = bodies["views_per_entry"] * bodies["entries_per_body"]
    ceiling = opened["accepted_views_per_s"]
    views_rate = min(PACE_SHARE * opened["flush_views_per_s"], ceiling)
    phases: dict[str, dict[str, Any]] = {}
    duration = run.durations.multi_s  # as long as the open phase
    failed_at = ceiling  # the lowest offered rate found not sustained so far
    for step in range(1, PACED_STEPS + 1):
        name = f"paced-{step}"
        phase = phases[name] = _phase(run, settings, groups, name, duration, bodies_path, bodies, rate=views_rate / views_per_body)
        if phase["sustained_valid"]:
            if views_rate >= failed_at * 0.9:
                break  # within 10% of a rate that failed: close enough
            views_rate = min(2 * views_rate, (views_rate + failed_at) / 2)
        else:
            failed_at = views_rate
            views_rate = 0.8 * phase.get("flush_views_per_s", views_rate)  # below what it managed to flush
    return phases


def _phase(run: Run, settings: Settings, groups: dict[str, list[int]], name: str, duration_s: int, bodies_path: Path, bodies: dict[str, Any], rate: float) -> dict[str, Any]:
    """One wrk run (paced at `rate` requests/s, or open if 0), sampled, then drained and checked."""
    before = run.total_views()
    progress = run.log_dir / f"multi-{name}-progress-"
    per_thread = rate / wrk.THREADS
    meter = CpuMeter(groups).start()
    with Sampler(run, settings) as sampler:
        result = wrk.run(
            base_url(settings), "multi.lua", connections=CONNECTIONS, duration_s=duration_s,
            args=[str(bodies_path), str(progress), f"{per_thread:.3f}"],
        )
    cpu = meter.stop({"wrk": result.cpu_s})
    if sampler.error is not None:
        raise RuntimeError(f"sampling failed: {sampler.error}") from sampler.error
    run.drain(settings, timeout=DRAIN_TIMEOUT_S)
    counted = run.total_views() - before
    figures = {"offered_req_per_s": round(rate, 2) if rate else "open", "duration_s": duration_s}
    figures.update(post_figures(result))
    figures["accepted_views_per_s"] = round(result["views_ok"] / result.post_seconds)
    figures["accepted_entries_per_s"] = round(result["posts_ok"] * bodies["entries_per_body"] / result.post_seconds)
    accepted = Accepted(progress, wrk.THREADS)
    figures.update(_steady_window(sampler.samples, accepted, before, result.started, result.post_seconds, bodies["views_per_entry"]))
    figures.update(exactness(result, counted, views_per_post=None))
    figures["cpu"] = cpu
    figures["sample_query_ms_mean"] = round(sum(s.query_ms for s in sampler.samples) / max(1, len(sampler.samples)), 1)
    figures["samples"] = [(round(s.at - result.started, 2), s.ready, s.views - before, accepted.at(s.at)) for s in sampler.samples]
    return figures


def _steady_window(samples: list[Sample], accepted: Accepted, before: int, started: float, post_seconds: float, views_per_entry: float) -> dict[str, Any]:
    """Flush rate over the steady window, and whether anything piled up meanwhile.

    Steady window: from WARM_UP_SHARE of the POST phase to its end. Flush rate: the
    database's growth over it. Valid only if, from its start to its end, (a) the ready
    messages grew by at most GROWTH_ALLOWANCE of the incoming message rate (incoming =
    flushed + growth of the queues), and (b) the backlog (accepted - flushed views) grew
    by at most GROWTH_ALLOWANCE of the accept rate. The sustained rate is the smaller of
    the accept and flush rates: flushing faster than accepting only drains an earlier backlog.
    """
    begin_at, end_at = started + WARM_UP_SHARE * post_seconds, started + post_seconds
    window = [s for s in samples if begin_at <= s.at <= end_at]
    if len(window) < 2:
        return {"sustained_valid": False, "window_note": f"only {len(window)} samples in the steady window"}
    first, last = window[0], window[-1]
    seconds = last.at - first.at
    flush_rate = (last.views - first.views) / seconds
    incoming_msgs_per_s = ((last.applied - first.applied) + (last.ready - first.ready)) / seconds
    ready_grew = (last.ready - first.ready) / seconds > GROWTH_ALLOWANCE * incoming_msgs_per_s
    accepted_first, accepted_last = accepted.at(first.at), accepted.at(last.at)
    accept_rate = (accepted_last - accepted_first) / seconds
    backlog_first = accepted_first - (first.views - before)
    backlog_last = accepted_last - (last.views - before)
    backlog_grew = (backlog_last - backlog_first) / seconds > GROWTH_ALLOWANCE * accept_rate
    return {
        "window_s": round(seconds, 1),
        "window_accept_views_per_s": round(accept_rate),
        "flush_views_per_s": round(flush_rate),
        "sustained_views_per_s": round(min(accept_rate, flush_rate)),
        "flush_entries_per_s": round(flush_rate / views_per_entry),
        "incoming_messages_per_s": round(incoming_msgs_per_s),
        "queue_depth_start": first.ready,
        "queue_depth_end": last.ready,
        "queue_depth_max": max(s.ready for s in window),
        "queues_grew": ready_grew,
        "backlog_views_start": backlog_first,
        "backlog_views_end": backlog_last,
        "backlog_grew": backlog_grew,
        "sustained_valid": not ready_grew and not backlog_grew,
    }
