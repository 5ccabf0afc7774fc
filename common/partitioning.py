"""Which partition queue a page belongs to, and which partitions a worker owns.

The hash is part of the public contract (other producers publish directly), so it is
spelled out in README.md and must never change silently:

    partition = int.from_bytes(md5(page.encode("utf-8")).digest()[:8], "big") % NUM_PARTITIONS

MD5 is used for its spread and because every language ships it, not for security.
Python's hash() would differ between processes.
"""
from __future__ import annotations

from hashlib import md5


def partition_for(page: str, num_partitions: int) -> int:
    digest = md5(page.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_partitions


def queue_name(prefix: str, partition: int) -> str:
    return f"{prefix}.p{partition}"


def parse_partition_spec(spec: str, num_partitions: int) -> tuple[int, ...]:
    """Turn "all" or "0-4,7" into a sorted tuple of partition numbers below num_partitions."""
    spec = spec.strip()
    if spec.lower() == "all":
        return tuple(range(num_partitions))
    chosen: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        low, sep, high = part.partition("-")
        try:
            first, last = (int(low), int(high)) if sep else (int(part), int(part))
        except ValueError:
            raise ValueError(f"expected 'all' or numbers and ranges like '0-4,7', got {spec!r}") from None
        if first > last:
            raise ValueError(f"range {part!r} runs backwards")
        if first < 0 or last >= num_partitions:
            raise ValueError(f"{part!r} is outside 0-{num_partitions - 1} (NUM_PARTITIONS={num_partitions})")
        chosen.update(range(first, last + 1))
    return tuple(sorted(chosen))


def split_evenly(partitions: tuple[int, ...], parts: int) -> list[tuple[int, ...]]:
    """Split partitions into at most `parts` contiguous, disjoint, non-empty groups."""
    parts = max(1, min(parts, len(partitions)))
    size, extra = divmod(len(partitions), parts)
    groups, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        groups.append(partitions[start:end])
        start = end
    return groups


def format_partition_spec(partitions: tuple[int, ...]) -> str:
    """The inverse of parse_partition_spec for a set of partitions: (0,1,2,5) -> "0-2,5"."""
    ranges: list[str] = []
    run: list[int] = []
    for number in sorted(partitions):
        if run and number == run[-1] + 1:
            run.append(number)
            continue
        if run:
            ranges.append(_format_run(run))
        run = [number]
    if run:
        ranges.append(_format_run(run))
    return ",".join(ranges)


def _format_run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"
