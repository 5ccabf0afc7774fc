"""From validated views to confirmed messages: partitioning and group commit.

A request becomes one message per partition it touches. Requests that arrive while the
publisher thread is busy are merged into the same per-partition messages (group
commit), which keeps the broker's message rate far below the request rate under load.
Requests with an Idempotency-Key are never merged: their message ids derive from the
key, so a retry repeats them exactly and the worker counts them once.

Browser views carry a visitor id: their key is (page, hour, visitor), so views of one
page and hour by different visitors stay separate entries, ``[page, hour, count, visitor]``.
"""
from __future__ import annotations

from dataclasses import dataclass

from common import messages
from common.broker import Outgoing, Topology
from common.partitioning import partition_for

# Workers hold up to PREFETCH messages per queue, so the size of one message bounds their
# memory; a request touching a partition with more views than this sends several.
MAX_VIEWS_PER_MESSAGE = 2_000

# (page, start of the hour in Unix seconds) or (page, hour, visitor id) -> views
EntryKey = tuple[str, int] | tuple[str, int, int]
EntryCounts = dict[EntryKey, int]


@dataclass(frozen=True)
class IngestRequest:
    """What one HTTP request asks to publish: views grouped by partition."""

    by_partition: dict[int, EntryCounts]
    idempotency_key: str | None = None


def split_by_partition(counts: EntryCounts, num_partitions: int) -> dict[int, EntryCounts]:
    by_partition: dict[int, EntryCounts] = {}
    partition_of: dict[str, int] = {}
    for key, count in counts.items():
        page = key[0]
        partition = partition_of.get(page)
        if partition is None:
            partition = partition_of[page] = partition_for(page, num_partitions)
        by_partition.setdefault(partition, {})[key] = count
    return by_partition


def _entries(counts: EntryCounts) -> list[messages.View]:
    """Message entries: [page, hour, count] or, with a visitor, [page, hour, count, visitor]."""
    try:
        # The common case, without visitors, at the speed of plain unpacking (3x the general form).
        return [(page, hour, count) for (page, hour), count in counts.items()]  # type: ignore[misc]
    except ValueError:  # some key carries a visitor: too many values to unpack
        return [(key[0], key[1], count, *key[2:]) for key, count in counts.items()]  # type: ignore[misc]


class _Accumulator:
    """Merged views for one partition; starts a new message when one would grow too large."""

    def __init__(self, topology: Topology, partition: int, out: list[Outgoing]) -> None:
        self._queue = topology.partition_queue(partition)
        self._out = out
        self._counts: EntryCounts = {}
        self._covers: list[int] = []

    def add(self, index: int, counts: EntryCounts) -> None:
        if self._counts and (len(self._counts) + len(counts) > MAX_VIEWS_PER_MESSAGE or self._would_overflow(counts)):
            self.emit()
        merged = self._counts
        for key, count in counts.items():
            merged[key] = merged.get(key, 0) + count
        self._covers.append(index)

    def _would_overflow(self, counts: EntryCounts) -> bool:
        return any(self._counts.get(key, 0) + count > messages.MAX_MESSAGE_COUNT for key, count in counts.items())

    def emit(self) -> None:
        if not self._counts:
            return
        message_id = messages.new_message_id()
        self._out.append(Outgoing(self._queue, messages.encode(message_id, _entries(self._counts)), message_id, self._covers))
        self._counts, self._covers = {}, []


def compose(topology: Topology, requests: list[IngestRequest]) -> list[Outgoing]:
    """The messages that carry these requests (runs on the publisher thread)."""
    out: list[Outgoing] = []
    merged: dict[int, _Accumulator] = {}
    for index, request in enumerate(requests):
        for partition, counts in request.by_partition.items():
            if request.idempotency_key is not None:
                out.extend(_keyed_messages(topology, partition, counts, request.idempotency_key, index))
                continue
            accumulator = merged.get(partition)
            if accumulator is None:
                accumulator = merged[partition] = _Accumulator(topology, partition, out)
            accumulator.add(index, counts)
    for accumulator in merged.values():
        accumulator.emit()
    return out


def _keyed_messages(topology: Topology, partition: int, counts: EntryCounts, key: str, index: int) -> list[Outgoing]:
    """A keyed request's messages for one partition; a retry of the same body repeats them exactly."""
    views = _entries(counts)
    out = []
    for chunk, start in enumerate(range(0, len(views), MAX_VIEWS_PER_MESSAGE)):
        message_id = messages.idempotent_message_id(key, partition, chunk)
        body = messages.encode(message_id, views[start : start + MAX_VIEWS_PER_MESSAGE])
        out.append(Outgoing(topology.partition_queue(partition), body, message_id, [index]))
    return out
