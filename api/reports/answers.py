"""The bodies of report answers, as JSON or CSV, from buckets and counts."""
from __future__ import annotations

import orjson
from flask import Response

from api.reports import zones
from api.reports.csvout import to_csv
from api.reports.params import ReportQuery
from api.reports.reading import Counts, Ranked

JSON = "application/json"
CSV = "text/csv; charset=utf-8"


def report(query: ReportQuery, buckets: tuple[zones.Bucket, ...], counts: dict[int, Counts], totals: Counts) -> Response:
    """One item per bucket, zero-filled, ordered and cut to `take`; totals over the whole window."""
    empty = Counts()
    order = range(len(buckets) - 1, -1, -1) if query.descending else range(len(buckets))
    if query.take is not None:
        order = order[: query.take]
    item = _hour_item if query.granularity == "hour" else _day_item
    data = [item(buckets[i], counts.get(i, empty)) for i in order]
    if query.format == "csv":
        return Response(to_csv(["h", "v", "t", "u"] if query.granularity == "hour" else ["d", "t", "v", "u"], data), content_type=CSV)
    return _json({"data": data, "totals": _totals(totals)})


def ranked(kind: str, found: list[Ranked], totals: Counts, fmt: str) -> Response:
    """Top pages or sites: {"data": [{kind: name, "v": views, "u": visitors}, ...], "totals": ...}."""
    data = [{kind: entry.name, "v": entry.counts.views, "u": entry.counts.visitors} for entry in found]
    if fmt == "csv":
        return Response(to_csv([kind, "v", "u"], data), content_type=CSV)
    return _json({"data": data, "totals": _totals(totals)})


def _hour_item(bucket: zones.Bucket, counts: Counts) -> dict:
    return {"h": bucket.label.hour, "v": counts.views, "t": bucket.text, "u": counts.visitors}


def _day_item(bucket: zones.Bucket, counts: Counts) -> dict:
    return {"d": bucket.text[:10], "t": bucket.text, "v": counts.views, "u": counts.visitors}


def _totals(totals: Counts) -> dict:
    return {"views": totals.views, "visitors": totals.visitors}


def _json(body: dict) -> Response:
    return Response(orjson.dumps(body), content_type=JSON)
