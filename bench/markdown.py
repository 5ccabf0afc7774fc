"""BENCHMARKS.md, written by the harness from the latest complete run."""
from __future__ import annotations

from bench import BENCH_DIR, MARKDOWN_PATH
from bench.context import Durations
from bench.results import RunRecord, rows, table

HOW_MEASURED = """\
## How each figure is measured

Everything runs on this one machine: wrk, the API (gunicorn, `API_PROCESSES` x `API_THREADS`),
two workers (`WORKER_PARTITIONS` 0-4 and 5-9), RabbitMQ and PostgreSQL share its cores, and its
speed drifts from run to run. Compare figures of the same run, as ratios; the ceilings are
measured in the same run for that reason. Each scenario starts its own API and workers with the
default settings of `common/config.py` (the production settings) in a database of its own
(`pageviews_bench`, dropped and recreated at the start of the run, tables truncated before each
scenario) and a queue prefix of its own (`bench.<run>.<scenario>`, queues deleted afterwards).
Load: `wrk -t2`, the scripts in `bench/lua/`.

- **single**: `POST /page-views/single`, 32 connections. Each body is one view of a page drawn
  Zipf-like (s = 1.0) from 10,000 pages (`bench/p0` ... `bench/p9999`) at a moment drawn uniformly
  from the last 20 hours. wrk's `-d` is the single duration. The script stops POSTing at a deadline 2-3 s before wrk's `-d` ends and
  then only sends `GET /health` about once a second per connection, so every POST gets its answer
  (wrk drops connections at `-d`, and a POST processed by the server but never answered could
  not be accounted). req/s = POSTs answered 2xx with `{"accepted":…}` / seconds until the
  deadline. Latency percentiles are wrk's, over all requests (the few health checks included:
  well under 1% of them). Exactness: after the load one sentinel view per partition goes
  through the API and the harness waits until each is in the database (each partition queue is
  FIFO with one active consumer, so everything before a sentinel is then counted); then the
  database's total of the bench pages is compared with the views answered 2xx: lost = accepted -
  counted (if positive), duplicated = counted - accepted - views of POSTs that failed or were never
  answered (if positive). Peak RSS is VmHWM from `/proc/<pid>/status` of the gunicorn master, each
  gunicorn worker process and each worker, read just before they stop.
- **single-gthread** (only with `--scenario worker-classes`): single again with the API under
  the worker class that is not the default (`API_WORKER_CLASS=gthread`), for an A/B of the
  worker classes in the same run.
- **multi**: `POST /page-views/multi`, 32 connections. The harness pre-generates 300 bodies (the
  script rotates through them): each has 100 distinct pages drawn Zipf-like from the same 10,000,
  each with the 24 hour timestamps ending with the current hour (inside retention, never in the
  future), each count uniform in 1..10 (so 2,400 entries and about 13,200 views per request).
  While wrk runs, a thread samples every second the ready messages summed over the partition
  queues (passive `queue_declare`), the database total of views and the rows of
  `applied_messages` (messages flushed); the wrk script writes its running total of views
  answered 2xx every 0.1 s. The first 20% of the POST phase is discarded as warm-up; over the
  rest (the steady window) the flush rate is the database's growth in views per second. The
  window counts as **sustained** only if, from its start to its end, (a) the ready messages grew
  no faster than 2% of the incoming message rate (incoming = flushed + growth of the queues),
  and (b) the backlog in views (answered 2xx minus in the database) grew no faster than 2% of
  the accept rate. (b) is needed because (a) alone cannot see a backlog held inside the workers
  (up to `PREFETCH` messages per queue, each up to 2000 views) while the ready count stays at 0. The first phase ("open") runs wrk as fast as answers come for
  the whole multi duration. If it is not sustained, paced phases follow (each as long, up to
  three): the first offers a fixed request rate worth 90% of the open phase's flush rate; after
  a sustained phase the next offers more (twice as much, at most halfway to the lowest rate that
  failed), after one that is not sustained 80% of what it flushed. The sustained figure is, for the fastest sustained phase, the smaller
  of its accept and flush rates (flushing faster than accepting only drains an earlier
  backlog): a lower bound of the true maximum (between it and the first rate that failed). entries/s =
  views/s divided by the mean count per entry of the bodies. Exactness after each phase as for
  single (sentinels are new pages on every drain).
- **drain**: with no worker running, a backlog of single-view messages (format v1, one view each,
  pages Zipf-like from 10,000, hours over the last 20 hours) is published to the partition queues
  by `common.partitioning.partition_for` with `common.broker.publish_in_bulk` (one call per
  partition, two partitions at a time). Then the two workers start; messages/s = backlog / time
  from starting the worker processes (their start-up included) until the database total equals
  the backlog. views/s is the same with views, as each message is one view. "steady" is the rate
  while the backlog went from 10% to 90% consumed, read from the queue depths sampled every 0.5 s
  (it leaves out start-up and the last flush; crossing moments interpolated between samples taken
  every 0.25 s). RSS of each worker is sampled every 0.5 s while messages are ready; peak is
  VmHWM; flat means the highest RSS of the second half of the samples is within 10% (or 5 MB) of
  the highest of the first half.
- **freshness**: API and workers idle otherwise; one view at a time to a fresh page
  (`fresh/<run>/<n>`, no timestamp, so the current hour) at 20 per second. For each, the time from
  receiving its 202 until a poll finds its row (`page_key = md5(page)::uuid AND page = page`);
  one thread polls every 5 ms for all pending probes in one statement and takes the moment the
  statement started (its snapshot) as the moment the row was seen. Five warm-up views first are
  not measured. Target: median ≤ FLUSH_INTERVAL_MS + 200 ms.
- **report**: `page_views` is filled directly in SQL with one row per page and hour (shard 0)
  from midnight UTC 30 days ago to the current hour, for N pages `s<k>.test/p<n>` over 100 sites
  (`INSERT … SELECT` from `generate_series`, one statement per day after
  `page_views_ensure_partition(day)` for each day), then `VACUUM ANALYZE page_views`. The rollups
  are then built as the system builds them: `site_hours` from those rows (what the flushes would
  have written) and `page_days` by the cleaner's own step for each whole day before today. wrk
  then runs one phase per question on 8 connections (`bench/lua/report_paths.lua`): `/report?page=`
  a filled page uniformly at random (the default 24-hour window), `/report?site=` a random site
  over the last 720 hours, `/pages` over the last 7 and 30 whole days, and more (see
  `bench/report.py` `phases`). The rows are truncated afterwards; this scenario runs last.
- **ceilings**: (a) HTTP: `bench/bare_app.py`, a Flask app whose POST handler only does
  `json.loads(request.get_data())` and answers `{"accepted":1}` with 202, run under gunicorn with
  exactly the API's settings (`api/gunicorn_conf.py`) under each worker class in turn, `sync`
  (one thread), `gthread` and `gevent`, two processes each, loaded with the same script,
  connections and duration as single; the fastest of the three is the ceiling single is compared
  with. API CPU per request = CPU seconds of the gunicorn processes while wrk ran / requests
  answered. (b) RabbitMQ: raw pika publishing persistent (delivery_mode 2), mandatory
  messages the size of a one-view message into a quorum queue declared with
  `Topology.partition_arguments()`, with publisher confirms: one at a time (`BlockingChannel` in
  confirm mode, each publish waits for its confirm) and pipelined (`SelectConnection`, up to 1,000
  unconfirmed messages), each for the broker duration; messages/s = confirmed / seconds.
- **cleaner** (when `bench/cleaner_bench.py` exists; written separately): run as
  `python -m bench.cleaner_bench [--quick]` in a scratch database of its own; it fills page_views
  and applied_messages and times one cleaner run and a second one (see its docstring).
- **CPU cores used** (single, bare Flask, each multi phase, drain): user + system CPU seconds
  from `/proc/<pid>/stat` while the load ran, divided by its wall seconds: the API (gunicorn
  master and workers), the worker processes, and by process name RabbitMQ (`beam.smp`),
  PostgreSQL (`postgres`) and wrk; "other" is the rest of the machine's busy time in
  `/proc/stat` (the harness, the kernel, other people's work). RabbitMQ and PostgreSQL serve
  other people's tests on this machine too, so their shares can include some of that. The
  machine is a virtual one: time its hypervisor gave to other machines ("stolen", from
  `/proc/stat`) is shown too, as one visible cause of drift.
- **exactly-once cost**: single and drain (with half the backlog) run again with
  `EXACTLY_ONCE=false` for the workers and the API (benchmark-only switch); cost = 1 - rate with /
  rate without. For drain the steady messages/s are compared, since the two backlogs differ in
  size and the end-to-end rate includes start-up.

## Notes

- Peak RSS is VmHWM, the high-water mark since the process started; each scenario starts
  fresh processes.
- wrk runs with two threads (`-t2`), one per core; `-t1` measured no better against the bare app.
- `bench/results.jsonl` keeps every scenario of every run (quick runs are marked `"quick": true`,
  failed attempts carry `"error"`); `python -m bench --rewrite-markdown [RUN_ID]` writes this file
  again from one of them.
"""


def _durations(quick: bool) -> str:
    d = Durations.quick() if quick else Durations()
    return (
        f"single {d.single_s} s, multi {d.multi_s} s per phase, drain {d.drain_messages:,} messages "
        f"({d.drain_messages // 2:,} without exactly-once), freshness {d.freshness_s} s, report {d.report_s} s "
        f"on {d.report_rows:,}+ rows, broker ceiling {d.broker_s} s per mode"
    )


def _code_line(record: RunRecord) -> str:
    versions = list(dict.fromkeys(record.code.values()))
    if len(versions) <= 1:
        return f"- Code under test (api, worker, common, migrations as on disk): fingerprint {versions[0] if versions else 'n/a'} throughout the run"
    by_scenario = ", ".join(f"{name} {code}" for name, code in record.code.items())
    return f"- **The code under test changed during this run** (it was being edited); fingerprint as each scenario started: {by_scenario}"


# Findings written by hand (profiles, experiments), kept at the end of BENCHMARKS.md across runs.
FINDINGS_PATH = BENCH_DIR / "findings.md"


def write(record: RunRecord) -> None:
    MARKDOWN_PATH.write_text(render(record), encoding="utf-8")


def render(record: RunRecord) -> str:
    machine = record.machine
    settings = record.settings.get("single") or next(iter(record.settings.values()), {})
    shown = {k: v for k, v in settings.items() if k not in ("PORT", "QUEUE_PREFIX", "DATABASE_URL", "AMQP_URL")}
    parts = [
        "# Benchmarks",
        "",
        "Written by `python -m bench` from its latest complete run; every run also appends its figures to",
        "`bench/results.jsonl`. Targets are goals for the code: \"not met\" is a finding, not a harness failure.",
        "",
    ]
    if record.quick:
        parts += ["**This is a `--quick` smoke run: durations are shortened and the figures are not representative.**", ""]
    parts += [
        f"- Command: `{record.command}`" + (" (what `make bench` runs)" if record.command.endswith("python -m bench") else ""),
        f"- Date: {record.date} (UTC); commit {record.commit}; run id {record.run_id}",
        f"- Durations: {_durations(record.quick)}",
        f"- Machine: {machine['cores']} cores ({machine['cpu_model']}), {machine['memory_mb']:,} MB of memory, shared by wrk, the API, the workers, RabbitMQ and PostgreSQL",
        f"- Settings (defaults of common/config.py): {', '.join(f'{k}={v}' for k, v in shown.items())}; the two worker processes take WORKER_PARTITIONS 0-4 and 5-9",
        f"- Cores busy just before each scenario, with none of the bench's processes running (the harness waits up to 60 s for less than 0.5): {', '.join(f'{name} {busy:.2f}' for name, busy in record.busy_before.items()) or 'n/a'}",
        f"- Hypervisor steal, in cores, averaged over each scenario (time this virtual machine's hypervisor gave to others; a scenario above 0.2 runs once more and the less disturbed attempt is shown): {', '.join(f'{name} {steal:.2f}' for name, steal in record.steal.items()) or 'n/a'}",
        _code_line(record),
        "",
        table(rows(record.figures)),
        "",
    ]
    if record.errors:
        parts += ["Scenarios that failed in this run:", ""]
        parts += [f"- {name}: {error}" for name, error in record.errors.items()]
        parts += [""]
    parts.append(HOW_MEASURED)
    if FINDINGS_PATH.exists():
        parts += ["", FINDINGS_PATH.read_text(encoding="utf-8").rstrip("\n"), ""]
    return "\n".join(parts)
