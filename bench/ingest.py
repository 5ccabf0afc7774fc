"""POST /page-views/single and /beacon with wrk (scenarios single, beacon and the bare-Flask ceiling), and what multi shares."""
from __future__ import annotations

import ipaddress
from typing import Any

from bench import wrk
from bench.context import Run
from bench.processes import Child, CpuMeter, peak_rss_mb
from bench.workload import PAGE_PREFIX, PAGES
from common.config import Settings

SINGLE_CONNECTIONS = 32


def single(run: Run, exactly_once: bool = True, worker_class: str | None = None) -> dict[str, Any]:
    """32 connections POST one view each for the run's single duration; then drain and compare.

    worker_class: the API under this gunicorn worker class instead of the default (scenario single-<class>).
    """
    name = "single" if exactly_once else "single-eo-off"
    changes: dict[str, Any] = {"exactly_once": exactly_once}
    if worker_class is not None:
        name, changes["api_worker_class"] = f"single-{worker_class}", worker_class
    settings = run.settings_for(name, **changes)
    return one_view_posts(run, settings, "single.lua", [str(PAGES), PAGE_PREFIX])


def beacon(run: Run) -> dict[str, Any]:
    """As single, through POST /page-views/beacon: text/plain, a desktop agent, a visitor id per view.

    Each POST comes "through a proxy" (X-Forwarded-For from 127.0.0.1, trusted) from one of
    100,000 addresses, so the visitor ids and sketches are as varied as a real site's.
    """
    settings = run.settings_for("beacon", trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    return one_view_posts(run, settings, "beacon.lua", [str(PAGES), PAGE_PREFIX])


def one_view_posts(run: Run, settings: Settings, script: str, args: list[str]) -> dict[str, Any]:
    """The API and workers under `script` (one view per POST) for the single duration; then drain and compare."""
    run.reset_tables()
    api = run.start_api(settings)
    workers = run.start_workers(settings)
    try:
        run.wait_consuming(settings, workers)
        meter = CpuMeter(cpu_groups(api, workers)).start()
        result = wrk.run(base_url(settings), script, connections=SINGLE_CONNECTIONS, duration_s=run.durations.single_s, args=args)
        cpu = meter.stop({"wrk": result.cpu_s})
        api_rss = api_peak_rss(api)
        run.drain(settings)
        counted = run.total_views()
        worker_rss = workers_peak_rss(workers)
        dead = run.dead_lettered(settings)
    finally:
        run.stop(api, *workers)
        run.delete_topology(settings)
    figures = post_figures(result)
    figures.update(exactness(result, counted, views_per_post=1))
    figures.update(connections=SINGLE_CONNECTIONS, duration_s=run.durations.single_s, api_peak_rss_mb=api_rss, worker_peak_rss_mb=worker_rss, dead_lettered=dead, cpu=cpu)
    figures.update(worker_class=settings.api_worker_class, api_cpu_ms_per_request=api_cpu_ms_per_request(cpu, result))
    return figures


# The HTTP ceiling is the fastest of the bare app under each of these (issue 15).
CEILING_WORKER_CLASSES = ("sync", "gthread", "gevent")


def ceiling_http(run: Run, worker_class: str) -> dict[str, Any]:
    """The bare Flask app under the API's gunicorn settings and this worker class, loaded exactly as in `single`."""
    settings = run.settings_for(f"ceiling-http-{worker_class}")
    bare = run.start_bare(settings, worker_class)
    try:
        meter = CpuMeter(cpu_groups(bare, [])).start()
        result = wrk.run(base_url(settings), "single.lua", connections=SINGLE_CONNECTIONS, duration_s=run.durations.single_s, args=[str(PAGES), PAGE_PREFIX])
        cpu = meter.stop({"wrk": result.cpu_s})
        rss = api_peak_rss(bare)
    finally:
        run.stop(bare)
        run.delete_topology(settings)
    figures = post_figures(result)
    figures.update(connections=SINGLE_CONNECTIONS, duration_s=run.durations.single_s, peak_rss_mb=rss, cpu=cpu)
    figures.update(worker_class=worker_class, api_cpu_ms_per_request=api_cpu_ms_per_request(cpu, result))
    return figures


def api_cpu_ms_per_request(cpu: dict[str, Any], result: wrk.WrkResult) -> float | None:
    """CPU the gunicorn processes used while wrk ran, per request they answered (POSTs and the tail's health checks)."""
    answered = result["posts_ok"] + result["posts_bad"] + result["health_ok"] + result["health_bad"]
    used = cpu["cores_used"].get("api")
    return None if not answered or used is None else round(1000 * used * cpu["seconds"] / answered, 3)


# --------------------------------------------------------------------------- shared


def base_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.port}"


def post_figures(result: wrk.WrkResult) -> dict[str, Any]:
    answered = result["posts_ok"] + result["posts_bad"]
    return {
        "req_per_s": round(result["posts_ok"] / result.post_seconds, 1),
        **result.latency_ms(),
        "posts_sent": int(result["posts_sent"]),
        "posts_2xx": int(result["posts_ok"]),
        "non_2xx": int(result["posts_bad"]),
        "unanswered": int(result["posts_sent"] - answered),
        "socket_errors": result.socket_errors(),
        "timeouts": int(result["err_timeout"]),
        "views_accepted": int(result["views_ok"]),
        "post_seconds": round(result.post_seconds, 2),
        "health_checks": int(result["health_ok"] + result["health_bad"]),
    }


def exactness(result: wrk.WrkResult, counted: int, views_per_post: int | None) -> dict[str, Any]:
    """Views told 2xx against views counted, after the drain.

    A POST answered non-2xx, or never answered, may or may not have been counted: its
    views are uncertain, and only counts beyond accepted + uncertain are duplicates. A
    single POST carries one view; a multi POST's views are not known to the script, so
    there a failed or unanswered POST leaves duplicates unknown (lost is still exact).
    """
    accepted = int(result["views_ok"])
    uncertain_posts = int(result["posts_sent"] - result["posts_ok"])
    lost = max(0, accepted - counted)
    if uncertain_posts and views_per_post is None:
        duplicated = None
    else:
        duplicated = max(0, counted - accepted - uncertain_posts * (views_per_post or 0))
    return {
        "counted": counted,
        "lost": lost,
        "duplicated": duplicated,
        "uncertain_posts": uncertain_posts,
        "exact": None if duplicated is None else (lost == 0 and duplicated == 0),
    }


def api_peak_rss(child: Child) -> dict[str, Any]:
    pids = child.pids()
    peaks = peak_rss_mb(pids)
    master = peaks.pop(str(child.pid), None)
    return {"master": master, "workers": sorted(peaks.values()), "total": round((master or 0) + sum(peaks.values()), 1)}


def workers_peak_rss(workers: list[Child]) -> list[float]:
    return [peak_rss_mb([w.pid]).get(str(w.pid)) for w in workers]


def cpu_groups(api: Child, workers: list[Child]) -> dict[str, list[int]]:
    """Our processes for CpuMeter: the API (gunicorn master and workers) and the worker processes."""
    groups = {"api": api.pids()}
    if workers:
        groups["workers"] = [worker.pid for worker in workers]
    return groups
