"""`make run`: the whole system on this machine, against the local PostgreSQL and RabbitMQ.

Loads config.env (the environment overrides it), creates and migrates the database,
then starts the API and WORKERS worker processes, each worker on its own share of
WORKER_PARTITIONS, and the cleaner. Metrics: the API's on PORT, the cleaner's on
METRICS_PORT (9100 when empty), the workers' on the ports after it (9101, 9102, ...).
Ctrl-C or SIGTERM stops them all cleanly (SIGTERM to each child, which flushes and acknowledges) and exits 0; if a child dies on its own, the rest are
stopped and the exit status is 1.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import db  # noqa: E402
from common import logging as structured_logging  # noqa: E402
from common.config import SETTINGS, ConfigError, Settings, environment, read_env_file  # noqa: E402
from common.logging import fields  # noqa: E402
from common.partitioning import format_partition_spec, split_evenly  # noqa: E402
from worker.cleaner.metrics import DEFAULT_PORT as CLEANER_METRICS_PORT  # noqa: E402

log = logging.getLogger("run")
STOP_TIMEOUT_S = 40


def load_settings() -> tuple[Settings, dict[str, str]]:
    env = environment()
    values = read_env_file(str(ROOT / "config.env"))
    values.update({s.name: env[s.name] for s in SETTINGS if s.name in env})
    return Settings.from_env(values), env


def start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    # A session of its own: Ctrl-C reaches only this supervisor, which then stops each
    # child with SIGTERM (graceful for gunicorn and the workers) instead of SIGINT.
    child = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, start_new_session=True)
    log.info("started", extra=fields(process=name, pid=child.pid))
    return child


def _metrics_port(settings: Settings, index: int | None) -> str:
    """The cleaner (index None) on METRICS_PORT (9100 if empty), worker i on the (i+1)th port after it; 0 stays off."""
    if settings.metrics_port == 0:
        return "0"
    first = settings.metrics_port or CLEANER_METRICS_PORT
    return str(first if index is None else first + 1 + index)


def main() -> int:
    try:
        settings, env = load_settings()
    except ConfigError as exc:
        print(f"run: invalid configuration: {exc}", file=sys.stderr)
        return 2
    structured_logging.configure(settings.log_level, settings.log_format)
    db.ensure_database(settings.database_url)
    db.migrate(settings.database_url)

    base_env = {**env, **settings.as_env(), "PYTHONPATH": str(ROOT)}
    children = {"api": start("api", ["-m", "api"], base_env)}
    for index, group in enumerate(split_evenly(settings.worker_partitions, settings.workers)):
        worker_env = {**base_env, "WORKER_PARTITIONS": format_partition_spec(group), "METRICS_PORT": _metrics_port(settings, index)}
        children[f"worker-{index} ({format_partition_spec(group)})"] = start(f"worker-{index}", ["-m", "worker"], worker_env)
    children["cleaner"] = start("cleaner", ["-m", "worker.cleaner"], {**base_env, "METRICS_PORT": _metrics_port(settings, None)})

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log.info("running; Ctrl-C stops everything", extra=fields(api=f"http://localhost:{settings.port}", metrics=f"http://localhost:{settings.port}/metrics"))

    failed = None
    while not stop.wait(0.5):
        failed = next((name for name, child in children.items() if child.poll() is not None), None)
        if failed:
            log.error("a process exited on its own; stopping the rest", extra=fields(process=failed, code=children[failed].returncode))
            break
    return stop_all(children) or (1 if failed else 0)


def stop_all(children: dict[str, subprocess.Popen]) -> int:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    worst = 0
    for name, child in children.items():
        try:
            code = child.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        log.info("stopped", extra=fields(process=name, code=code))
        worst = worst or (1 if code not in (0, -signal.SIGTERM) else 0)
    return worst


if __name__ == "__main__":
    sys.exit(main())
