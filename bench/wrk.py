"""Running wrk with one of bench/lua/*.lua and reading the line its done() prints."""
from __future__ import annotations

import logging
import math
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass

from bench import LUA_DIR

log = logging.getLogger("bench.wrk")

THREADS = 2  # the machine has two cores; -t1 measured no better against the bare app (within noise)
TAIL_S = 3  # the POST phase ends this long before wrk's -d ends, so every POST gets its answer


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    log.info("wrk is missing; installing it with apt-get")
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(install, check=True, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


@dataclass(frozen=True)
class WrkResult:
    counters: dict[str, float]  # the BENCH line: posts_sent, posts_ok, views_ok, ..., latency in µs
    started: float  # wall clock when wrk was launched
    duration_s: float  # wrk's -d
    post_seconds: float  # from launch to the deadline: how long POSTs were sent
    cpu_s: float  # CPU seconds wrk itself used (user + system)
    output: str

    def __getitem__(self, name: str) -> float:
        return self.counters[name]

    def latency_ms(self) -> dict[str, float]:
        return {
            "p50_ms": round(self["lat_p50_us"] / 1000, 2),
            "p90_ms": round(self["lat_p90_us"] / 1000, 2),
            "p99_ms": round(self["lat_p99_us"] / 1000, 2),
            "mean_ms": round(self["lat_mean_us"] / 1000, 2),
            "max_ms": round(self["lat_max_us"] / 1000, 2),
        }

    def socket_errors(self) -> int:
        return int(self["err_connect"] + self["err_read"] + self["err_write"])


def run(url: str, script: str, *, connections: int, duration_s: int, args: list[str] | None = None, with_deadline: bool = True) -> WrkResult:
    """Run wrk for duration_s; with_deadline passes the end of the POST phase as the script's first argument."""
    wrk = ensure_wrk()
    started = time.time()
    script_args = list(args or [])
    deadline = math.ceil(started + duration_s - TAIL_S)
    if with_deadline:
        script_args.insert(0, str(deadline))
    command = [
        wrk, f"-t{THREADS}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "10s",
        "-s", str(LUA_DIR / script), url, "--", *script_args,
    ]
    log.info("running wrk", extra={"fields": {"command": " ".join(command[1:])}})
    # wrk is the only child that ends while it runs, so the growth of RUSAGE_CHILDREN is its CPU.
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=duration_s + 60)
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{output}")
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (children_after.ru_utime + children_after.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    counters = _bench_line(output)
    post_seconds = (deadline - started) if with_deadline else counters["duration_us"] / 1e6
    return WrkResult(counters, started, duration_s, post_seconds, cpu_s, output)


def _bench_line(output: str) -> dict[str, float]:
    for line in output.splitlines():
        if line.startswith("BENCH "):
            return {key: float(value) for key, value in (part.split("=", 1) for part in line[6:].split())}
    raise RuntimeError(f"wrk printed no BENCH line:\n{output}")
