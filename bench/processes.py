"""The processes under test (API, workers, the bare-Flask ceiling) and their memory, read from /proc."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from bench import ROOT
from common.config import Settings, environment
from common.partitioning import format_partition_spec, split_evenly

_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
START_TIMEOUT_S = 40


class Child:
    """`python -m <module>` with exactly these settings, in a session of its own, logging to a file."""

    def __init__(self, name: str, module: str, settings: Settings, log_dir: Path, args: list[str] | None = None) -> None:
        self.name = name
        self.settings = settings
        self.log_path = log_dir / f"{name}.log"
        env = {key: value for key, value in environment().items() if key in _PASSED_THROUGH}
        env.update(settings.as_env())
        env["PYTHONPATH"] = str(ROOT)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open for the child's whole life, closed in stop()
        # A session of its own: Ctrl-C in the terminal reaches only the harness, which
        # then stops each child in order (SIGTERM, so workers flush and acknowledge).
        self.popen = subprocess.Popen(
            [sys.executable, "-m", module, *(args or [])], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def pids(self) -> list[int]:
        """This process and its descendants (gunicorn's master and its worker processes)."""
        return [self.pid, *descendants(self.pid)]

    def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM to the process group, then SIGKILL if it has not exited within timeout."""
        if self.alive():
            _signal_group(self.pid, signal.SIGTERM)
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.pid, signal.SIGKILL)
            code = self.popen.wait(timeout=10)
        self._log.close()
        return code

    def tail(self, chars: int = 3000) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def start_api(settings: Settings, log_dir: Path, name: str = "api", module: str = "api", ready_path: str = "/ready", args: list[str] | None = None) -> Child:
    """Start a gunicorn app (args: extra gunicorn options) and wait until ready_path answers 200 (or fail fast if it exits)."""
    child = Child(name, module, settings, log_dir, args)
    url = f"http://127.0.0.1:{settings.port}{ready_path}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if not child.alive():
                raise RuntimeError(f"{name} exited early:\n{child.tail()}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return child
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer {url} within {START_TIMEOUT_S}s:\n{child.tail()}")
            time.sleep(0.1)
    except BaseException:
        child.stop(timeout=10)
        raise


def start_workers(settings: Settings, log_dir: Path, count: int = 2) -> list[Child]:
    """`count` workers, each on its own contiguous share of the partitions (0-4 and 5-9, as `make run` does)."""
    workers = []
    for index, group in enumerate(split_evenly(settings.worker_partitions, count)):
        workers.append(Child(f"worker-{index}-{format_partition_spec(group)}", "worker", settings.replace(worker_partitions=group, metrics_port=0), log_dir))  # several workers: no shared 9101
    return workers


# --------------------------------------------------------------------------- /proc


def descendants(pid: int) -> list[int]:
    """Every descendant of pid, found by each process's parent in /proc/<pid>/stat."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
        except OSError:
            continue
        # The command name (2nd field) is in parentheses and may contain spaces.
        fields = stat[stat.rfind(")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def status_kb(pid: int, field: str) -> int | None:
    """A memory field of /proc/<pid>/status in kB (VmRSS, VmHWM), or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb(pids: list[int]) -> dict[str, float]:
    """VmHWM (peak resident set since the process started) of each pid, in MB."""
    peaks = {}
    for pid in pids:
        kb = status_kb(pid, "VmHWM")
        if kb is not None:
            peaks[str(pid)] = round(kb / 1024, 1)
    return peaks


def rss_mb(pid: int) -> float | None:
    kb = status_kb(pid, "VmRSS")
    return None if kb is None else kb / 1024


# --------------------------------------------------------------------------- where the CPU goes

_TICKS = os.sysconf("SC_CLK_TCK")
_BY_NAME = {"beam.smp": "rabbitmq", "postgres": "postgresql", "wrk": "wrk"}


def _stat_fields(pid: str) -> tuple[str, list[str]] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except OSError:
        return None
    return stat[stat.find("(") + 1 : stat.rfind(")")], stat[stat.rfind(")") + 2 :].split()


def _cpu_by_group(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each group: named pids, or RabbitMQ, PostgreSQL and wrk by name."""
    owner = {pid: name for name, pids in groups.items() for pid in pids}
    used: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        parsed = _stat_fields(entry)
        if parsed is None:
            continue
        command, fields = parsed
        group = owner.get(int(entry)) or _BY_NAME.get(command)
        if group is None:
            continue
        used[group] = used.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / _TICKS
    return used


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent working (all cores), from /proc/stat.

    Steal time (the hypervisor running someone else) is not work done here: see machine_steal_s.
    """
    user, nice, system, _idle, _iowait, irq, softirq = _cpu_line()[:7]
    return (user + nice + system + irq + softirq) / _TICKS


def machine_steal_s() -> float:
    """CPU seconds taken from this virtual machine by its hypervisor (all cores)."""
    values = _cpu_line()
    return values[7] / _TICKS if len(values) > 7 else 0.0


def _cpu_line() -> list[int]:
    with open("/proc/stat") as handle:
        return [int(v) for v in handle.readline().split()[1:]]


class CpuMeter:
    """CPU seconds by group between start() and stop(): our processes by pid, the services by name.

    RabbitMQ and PostgreSQL serve other people's tests on this machine too, and a process
    that exits in between is missed, so the figures are approximate; "other" is the rest of
    the machine's busy time (other people's work, the harness itself, the kernel).
    """

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self._groups = groups
        self._start: dict[str, float] = {}
        self._busy = self._steal = 0.0
        self._at = 0.0

    def start(self) -> "CpuMeter":
        self._start, self._busy, self._steal, self._at = _cpu_by_group(self._groups), machine_busy_s(), machine_steal_s(), time.monotonic()
        return self

    def stop(self, extra: dict[str, float] | None = None) -> dict[str, Any]:
        """The shares since start(); extra: CPU seconds of groups measured otherwise (wrk, which exits before this)."""
        end, busy, seconds = _cpu_by_group(self._groups), machine_busy_s(), time.monotonic() - self._at
        steal = machine_steal_s() - self._steal
        used = {name: max(0.0, end.get(name, 0.0) - self._start.get(name, 0.0)) for name in end}
        used.update(extra or {})
        total_busy = busy - self._busy
        used["other"] = max(0.0, total_busy - sum(used.values()))
        cores = os.cpu_count() or 1
        return {
            "seconds": round(seconds, 1),
            "machine_busy_pct": round(100 * total_busy / (seconds * cores), 1),
            # Cores' worth of time the hypervisor gave to other virtual machines: the drift.
            "steal_cores": round(steal / seconds, 2),
            "cores_used": {name: round(value / seconds, 2) for name, value in sorted(used.items(), key=lambda item: -item[1])},
        }


def wait_for_quiet(busy_cores: float = 0.5, max_wait_s: float = 60.0, every_s: float = 2.0) -> float:
    """Wait (up to max_wait_s) until the machine uses fewer than busy_cores; return the last reading.

    Between scenarios none of our processes runs, so what is busy then is someone else's work
    (other people's tests share this machine) or RabbitMQ and PostgreSQL settling down.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        before, started = machine_busy_s(), time.monotonic()
        time.sleep(every_s)
        cores = (machine_busy_s() - before) / (time.monotonic() - started)
        if cores < busy_cores or time.monotonic() >= deadline:
            return round(cores, 2)
