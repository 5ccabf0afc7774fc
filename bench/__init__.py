"""The benchmark of issue 6: `python -m bench` (or `make bench`).

Every scenario runs against the real API, workers, RabbitMQ and PostgreSQL of this
machine, in a database (pageviews_bench) and under a queue prefix of its own, and
appends one JSON line to bench/results.jsonl. BENCHMARKS.md is written from the
latest complete run. The machine's speed drifts, so figures are compared as ratios
to ceilings measured in the same run. See `python -m bench --help`.
"""
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LUA_DIR = BENCH_DIR / "lua"
RESULTS_PATH = BENCH_DIR / "results.jsonl"
MARKDOWN_PATH = ROOT / "BENCHMARKS.md"
