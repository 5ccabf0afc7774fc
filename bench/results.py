"""Results: one JSON line per scenario in bench/results.jsonl, and the table of a run."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench import RESULTS_PATH


@dataclass
class RunRecord:
    """What a run measured, scenario by scenario, with what the JSON lines share."""

    run_id: str
    date: str
    commit: str
    command: str
    quick: bool
    machine: dict[str, Any]
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, dict[str, str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    loadavg: dict[str, list[float]] = field(default_factory=dict)  # 1, 5, 15-minute load before each scenario
    busy_before: dict[str, float] = field(default_factory=dict)  # cores busy just before each scenario (none of ours running)
    code: dict[str, str] = field(default_factory=dict)  # fingerprint of the code under test as each scenario started
    steal: dict[str, float] = field(default_factory=dict)  # cores' worth of time the hypervisor took, over each kept scenario

    def line(self, scenario: str, date: str, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "date": date,
            "run_id": self.run_id,
            "commit": self.commit,
            "command": self.command,
            "quick": self.quick,
            "machine": self.machine,
            "settings": self.settings.get(scenario, {}),
            "scenario": scenario,
            **extra,
        }


def append(line: dict[str, Any], path: Path = RESULTS_PATH) -> None:
    """Append one JSON line; results.jsonl is append-only (and merges by union in git)."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, sort_keys=False, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    figure: str
    result: str
    reference: str  # the ceiling of the same run and the ratio to it, if any
    target: str
    met: str  # "met", "not met", "" (no target) or "n/a"


def _fmt(value: Any, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        text = f"{value:,.{digits}f}"
        return f"{text} {unit}".strip()
    return str(value)


def _mbs(values: list[float | None]) -> str:
    return " / ".join(_fmt(v, digits=1) for v in values)


def _cpu(figures: dict[str, Any]) -> str:
    cpu = figures.get("cpu") or {}
    if not cpu:
        return "n/a"
    shares = ", ".join(f"{name} {value:.2f}" for name, value in cpu["cores_used"].items())
    steal = f", {cpu['steal_cores']:.2f} cores stolen by the hypervisor" if cpu.get("steal_cores") else ""
    return f"{shares} (machine {cpu['machine_busy_pct']:.0f}% busy{steal})"


def _met(condition: bool | None) -> str:
    if condition is None:
        return "n/a"
    return "met" if condition else "**not met**"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return a / b


def rows(figures: dict[str, dict[str, Any]]) -> list[Row]:
    """The figures table: every scenario of the run, with ratios to the ceilings of the same run."""
    out: list[Row] = []
    get: Callable[[str], dict[str, Any]] = lambda name: figures.get(name) or {}  # noqa: E731
    ceilings = http_ceilings(figures)
    bare_name, bare = fastest(ceilings)
    broker = get("ceiling-broker")
    for name in ("single", "single-gevent", "single-gthread", "beacon"):
        if get(name):
            out.extend(_single_rows(name, get(name), bare_name, bare))

    multi = get("multi")
    if multi:
        phases = multi.get("phases", {})
        opened = phases.get("open", {})
        sustained, by = multi.get("sustained_views_per_s"), multi.get("established_by")
        if by == "open":
            how = "at full load: nothing piled up"
        elif by:
            how = f"{by}, {_fmt(phases[by]['offered_req_per_s'], digits=1)} req/s offered; at full load views piled up"
        else:
            how = "not established: views piled up" + (" also when paced" if len(phases) > 1 else "")
        out.append(Row("multi: sustained end-to-end views/s", f"{_fmt(sustained)} views/s ({how})", f"full load: accepted {_fmt(opened.get('accepted_views_per_s'))}, flushed {_fmt(opened.get('flush_views_per_s'))} views/s", "≥ 150,000", _met(bool(multi.get("sustained_valid")) and (sustained or 0) >= 150_000)))
        out.append(Row("multi: sustained entries/s (counts 1..10)", _fmt(multi.get("sustained_entries_per_s")), f"full load: accepted {_fmt(opened.get('accepted_entries_per_s'))} entries/s at {_fmt(opened.get('req_per_s'), digits=1)} req/s", "", ""))
        for name, phase in phases.items():
            out.append(Row(f"multi ({name}): accepted / flushed; queues", f"{_fmt(phase.get('window_accept_views_per_s'))} / {_fmt(phase.get('flush_views_per_s'))} views/s; ready messages {_fmt(phase.get('queue_depth_start'))} → {_fmt(phase.get('queue_depth_end'))}; backlog {_fmt(phase.get('backlog_views_start'))} → {_fmt(phase.get('backlog_views_end'))} views", f"grew: ready {_fmt(phase.get('queues_grew'))}, backlog {_fmt(phase.get('backlog_grew'))}; CPU: {_cpu(phase)}", "", ""))
        latency = f"{_fmt(multi['p50_ms'], digits=0)} / {_fmt(multi['p99_ms'], digits=0)} ms ({by or 'open'})"
        if by and by != "open":
            latency += f", {_fmt(opened.get('p50_ms'), digits=0)} / {_fmt(opened.get('p99_ms'), digits=0)} ms (open)"
        out.append(Row("multi: latency p50 / p99; non-2xx; exact", f"{latency}; {multi['non_2xx']}; {_fmt(multi['exact'])}", f"worker peak RSS {' / '.join(_fmt(v, digits=0) for v in multi.get('worker_peak_rss_mb', []))} MB", "exact", _met(multi["exact"])))

    drain = get("drain")
    if drain:
        out.append(Row("drain: messages/s (1 view each)", f"{_fmt(drain['msgs_per_s'])} msg/s ({drain['messages']:,} in {_fmt(drain['drain_s'], 's', 1)}); steady {_fmt(drain.get('steady_msgs_per_s'))}", f"broker pipelined publish {_fmt(broker.get('pipelined_msgs_per_s'))} msg/s; ratio {_fmt(_ratio(drain['msgs_per_s'], broker.get('pipelined_msgs_per_s')), digits=2)}", "≥ 20,000", _met(drain["msgs_per_s"] >= 20_000)))
        peak = max((v for v in drain["worker_peak_rss_mb"] if v is not None), default=None)
        flat = drain.get("rss_flat")
        out.append(Row("drain: worker peak RSS; flat", f"{' / '.join(_fmt(v, digits=1) for v in drain['worker_peak_rss_mb'])} MB; flat: {_fmt(flat)} (highest RSS, first half → second half: {_mbs(drain['rss_first_half_max_mb'])} → {_mbs(drain['rss_second_half_max_mb'])} MB)", "", "< 150 MB, flat", _met(None if peak is None else peak < 150 and bool(flat))))
        out.append(Row("drain: CPU cores used while draining", _cpu(drain), "", "", ""))
        out.append(Row("drain: exact (counted = published)", f"{_fmt(drain['exact'])} ({drain['counted']:,})", "", "exact", _met(drain["exact"])))

    fresh = get("freshness")
    if fresh:
        limit = fresh["target_median_ms"]
        out.append(Row("freshness: 202 → visible, median / p99", f"{_fmt(fresh['median_ms'], digits=0)} / {_fmt(fresh['p99_ms'], digits=0)} ms ({fresh['seen']}/{fresh['probes']} seen)", f"FLUSH_INTERVAL_MS {fresh['flush_interval_ms']}", f"median ≤ {limit} ms", _met(None if fresh["median_ms"] is None else fresh["median_ms"] <= limit)))

    rep = get("report")
    if rep:
        out.append(Row(f"report: latency p50 / p99 at {rep['rows']:,} rows", f"{_fmt(rep['p50_ms'], digits=1)} / {_fmt(rep['p99_ms'], digits=1)} ms; {_fmt(rep['req_per_s'])} req/s (8 conn.)", f"non-2xx {rep['non_2xx']}", "p99 < 15 ms", _met(rep["p99_ms"] < 15)))
        for name, phase in rep.get("phases", {}).items():
            if name == "page":
                continue  # the row above
            target = phase.get("target_p99_ms")
            latency = f"{_fmt(phase['p50_ms'], digits=1)} / {_fmt(phase['p99_ms'], digits=1)} ms; {_fmt(phase['req_per_s'])} req/s (8 conn.)"
            out.append(Row(f"report {name}: p50 / p99", latency, f"non-2xx {phase['non_2xx']}; `{phase['path']}`", f"p99 < {target:g} ms" if target else "", _met(phase["p99_ms"] < target) if target else ""))

    for name, ceiling in ceilings.items():
        fastest_mark = " (the fastest: the ceiling)" if name == bare_name and len(ceilings) > 1 else ""
        out.append(Row(f"ceiling: {_label(name, ceiling)} POST req/s (32 conn.)", f"{_fmt(ceiling['req_per_s'])} req/s{fastest_mark}; p50 / p99 {_fmt(ceiling['p50_ms'], digits=1)} / {_fmt(ceiling['p99_ms'], digits=1)} ms; API CPU per request {_fmt(_cpu_per_request(ceiling), 'ms', 2)}", "", "", ""))
    if broker:
        out.append(Row(f"ceiling: RabbitMQ confirmed publishes ({broker['message_bytes']} B, quorum)", f"one at a time {_fmt(broker['one_at_a_time_msgs_per_s'])} msg/s; pipelined (window {broker['pipeline_window']}) {_fmt(broker['pipelined_msgs_per_s'])} msg/s", "", "", ""))

    eo = get("exactly-once")
    for name in ("single", "drain"):
        cost = eo.get(f"{name}_cost_pct")
        if f"{name}_ratio" in eo:
            out.append(Row(f"exactly-once cost: {name}", f"{_fmt(cost, '%', 1)} (with/without {_fmt(eo[f'{name}_ratio'], digits=3)})", eo.get(f"{name}_detail", ""), "≤ 15%", _met(None if cost is None else cost <= 15)))

    cleaner = get("cleaner")
    if cleaner:
        if "seconds" in cleaner:
            result = (
                f"first run {_fmt(cleaner['seconds'], 's', 1)} on {_fmt(cleaner.get('rows_before'))} rows "
                f"({_fmt(cleaner.get('rows_compacted'))} rows compacted, {_fmt(cleaner.get('partitions_dropped'))} partitions dropped, "
                f"{_fmt(cleaner.get('ids_pruned'))} ids pruned); second run {_fmt(cleaner.get('second_run_seconds'), 's', 2)}"
            )
        else:
            result = cleaner.get("summary", "see bench/results.jsonl")
        out.append(Row("cleaner (bench/cleaner_bench.py)", result, "", "", ""))
    return out


def http_ceilings(figures: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The bare-Flask ceilings of a run: one per worker class (ceiling-http-<class>), or the one of older runs."""
    return {name: value for name, value in figures.items() if (name == "ceiling-http" or name.startswith("ceiling-http-")) and value}


def fastest(ceilings: dict[str, dict[str, Any]]) -> tuple[str | None, dict[str, Any]]:
    if not ceilings:
        return None, {}
    name = max(ceilings, key=lambda key: ceilings[key].get("req_per_s") or 0)
    return name, ceilings[name]


def _cpu_per_request(figures: dict[str, Any]) -> float | None:
    """API CPU ms per request answered; for runs before it was recorded, from the CPU shares and request counts."""
    if "api_cpu_ms_per_request" in figures:
        return figures["api_cpu_ms_per_request"]
    cpu, answered = figures.get("cpu") or {}, (figures.get("posts_sent") or 0) + (figures.get("health_checks") or 0)
    used = (cpu.get("cores_used") or {}).get("api")
    return None if used is None or not answered else round(1000 * used * cpu["seconds"] / answered, 3)


def _label(name: str | None, figures: dict[str, Any]) -> str:
    worker_class = figures.get("worker_class")
    return f"bare Flask ({worker_class})" if worker_class else "bare Flask"


def _single_rows(name: str, single: dict[str, Any], bare_name: str | None, bare: dict[str, Any]) -> list[Row]:
    """The rows of scenario single (or single-<worker class>, or beacon), against the fastest HTTP ceiling."""
    what = name + (f" ({single['worker_class']})" if single.get("worker_class") else "")
    ceiling = _label(bare_name, bare)
    ratio = _ratio(single.get("req_per_s"), bare.get("req_per_s"))
    target = 0.7 if name == "beacon" else 0.8  # issue 15: the browser collector's target is lower
    return [
        Row(f"{what}: POST req/s (32 conn.)", _fmt(single["req_per_s"], digits=0), f"{ceiling} {_fmt(bare.get('req_per_s'))}; ratio {_fmt(ratio, digits=2)}", f"ratio ≥ {target}", _met(None if ratio is None else ratio >= target)),
        Row(f"{what}: latency p50 / p99", f"{_fmt(single['p50_ms'], digits=1)} / {_fmt(single['p99_ms'], digits=1)} ms", f"{ceiling} {_fmt(bare.get('p50_ms'), digits=1)} / {_fmt(bare.get('p99_ms'), digits=1)} ms", "p99 < 30 ms", _met(single["p99_ms"] < 30)),
        Row(f"{what}: API CPU per request", _fmt(_cpu_per_request(single), "ms", 2), f"{ceiling} {_fmt(_cpu_per_request(bare), 'ms', 2)}", "", ""),
        Row(f"{what}: non-2xx / unanswered", f"{single['non_2xx']} / {single['unanswered']}", "", "0 / 0", _met(single["non_2xx"] == 0 and single["unanswered"] == 0)),
        Row(f"{what}: exact (counted = accepted)", f"{_fmt(single['exact'])}: accepted {single['views_accepted']:,}, counted {single['counted']:,}, lost {single['lost']}, duplicated {_fmt(single['duplicated'])}", "", "exact", _met(single["exact"])),
        Row(f"{what}: peak RSS, API (master + workers)", f"{_fmt(single['api_peak_rss_mb'].get('master'), digits=1)} + {' + '.join(_fmt(v, digits=1) for v in single['api_peak_rss_mb'].get('workers', []))} MB", f"{ceiling} {_fmt(bare.get('peak_rss_mb', {}).get('total'), 'MB', 1)} in all", "", ""),
        Row(f"{what}: CPU cores used during the load", _cpu(single), f"{ceiling}: {_cpu(bare)}", "", ""),
    ]


def table(rows_: list[Row]) -> str:
    header = ["Figure", "Result", "Same-run reference", "Target", "Met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows_:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in (row.figure, row.result, row.reference, row.target, row.met)) + " |")
    return "\n".join(lines)


def text_table(rows_: list[Row]) -> str:
    """The same table, aligned for a terminal."""
    cells = [("Figure", "Result", "Same-run reference", "Target", "Met")] + [(r.figure, r.result, r.reference, r.target, r.met.replace("*", "")) for r in rows_]
    widths = [max(len(row[i]) for row in cells) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def exactly_once_cost(figures: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Throughput with EXACTLY_ONCE=true over throughput without it, for single and drain, as a cost in %.

    single: POST req/s. drain: the steady messages/s (10% to 90% of the backlog consumed),
    which does not depend on the backlog's size or on start-up, since the run without
    exactly-once drains half as many messages.
    """
    out: dict[str, Any] = {}
    pairs = (("single", "req_per_s", "req/s"), ("drain", "steady_msgs_per_s", "steady msg/s"))
    for name, key, unit in pairs:
        with_eo, without = (figures.get(name) or {}).get(key), (figures.get(f"{name}-eo-off") or {}).get(key)
        if with_eo is None or not without:
            continue
        ratio = with_eo / without
        out[f"{name}_ratio"] = round(ratio, 3)
        out[f"{name}_cost_pct"] = round((1 - ratio) * 100, 1)
        out[f"{name}_detail"] = f"{with_eo:,.0f} vs {without:,.0f} {unit}"
    drain_with, drain_without = (figures.get("drain") or {}).get("msgs_per_s"), (figures.get("drain-eo-off") or {}).get("msgs_per_s")
    if drain_with and drain_without:
        out["drain_end_to_end_ratio"] = round(drain_with / drain_without, 3)
    return out or None


def load_run(run_id: str | None = None, path: Path = RESULTS_PATH) -> RunRecord:
    """A run as recorded in results.jsonl (the latest run if run_id is None), to rewrite BENCHMARKS.md from."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path} holds no runs")
    run_id = run_id or lines[-1]["run_id"]
    mine = [line for line in lines if line["run_id"] == run_id]
    if not mine:
        raise ValueError(f"no run {run_id} in {path}")
    first = mine[0]
    record = RunRecord(run_id, first["date"], first["commit"], first["command"], first["quick"], first["machine"])
    for line in mine:
        name = line["scenario"]
        if "error" in line:
            if name not in record.figures:
                record.errors[name] = line["error"]
            continue
        # As the runner keeps it: of several attempts, the one the hypervisor disturbed least.
        steal = line.get("steal_cores")
        if name in record.steal and steal is not None and steal >= record.steal[name]:
            continue
        if steal is not None:
            record.steal[name] = steal
        record.errors.pop(name, None)
        record.figures[name] = line["figures"]
        record.settings[name] = line.get("settings", {})
        if "loadavg_before" in line:
            record.loadavg[name] = line["loadavg_before"]
        if "busy_cores_before" in line:
            record.busy_before[name] = line["busy_cores_before"]
        if "code" in line:
            record.code[name] = line["code"]
    return record
