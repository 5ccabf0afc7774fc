"""Which partition a page goes to (a public contract), and which partitions a worker owns."""
from __future__ import annotations

from collections import Counter
from hashlib import md5

import pytest

from common.partitioning import format_partition_spec, parse_partition_spec, partition_for, queue_name, split_evenly


def documented_partition(page: str, num_partitions: int) -> int:
    """The formula exactly as README.md and the module docstring spell it out for other producers."""
    return int.from_bytes(md5(page.encode("utf-8")).digest()[:8], "big") % num_partitions


# Computed once from the documented formula (and cross-checked with `printf %s PAGE | md5sum`):
# the first 8 bytes of the digest as a big-endian integer, modulo the partition count.
# If one of these changes, every producer that follows the README routes pages differently.
FIXED = [
    ("example.com/a", {1: 0, 4: 2, 7: 2, 10: 6, 1000: 546}),
    ("example.com/b", {1: 0, 4: 0, 7: 3, 10: 8, 1000: 868}),
    ("例え.jp/ページ", {1: 0, 4: 1, 7: 4, 10: 9, 1000: 509}),
    ("https://example.org/?q=1&x=ü", {1: 0, 4: 3, 7: 5, 10: 3, 1000: 463}),
]


@pytest.mark.parametrize(("page", "expected"), FIXED, ids=["ascii-a", "ascii-b", "unicode", "url-with-query"])
def test_partition_of_a_page_is_fixed(page, expected):
    assert {n: partition_for(page, n) for n in expected} == expected


@pytest.mark.parametrize("page", ["", "a", "example.com/a", "例え.jp/ページ", "x" * 2048, "emoji/🙂"])
@pytest.mark.parametrize("num_partitions", [1, 3, 10, 1000])
def test_partition_follows_the_documented_formula(page, num_partitions):
    assert partition_for(page, num_partitions) == documented_partition(page, num_partitions)


def test_pages_spread_evenly_over_partitions():
    num_partitions, pages = 10, 100_000
    spread = Counter(partition_for(f"example.com/page/{i}", num_partitions) for i in range(pages))
    mean = pages / num_partitions
    assert set(spread) == set(range(num_partitions))
    assert all(abs(count - mean) <= 0.05 * mean for count in spread.values()), spread


def test_queue_name():
    assert queue_name("pageviews", 7) == "pageviews.p7"


# --------------------------------------------------------------------------- partition specs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("all", tuple(range(10))),
        ("ALL", tuple(range(10))),
        ("  all  ", tuple(range(10))),
        ("0-4,7", (0, 1, 2, 3, 4, 7)),
        (" 0 - 4 , 7 ", (0, 1, 2, 3, 4, 7)),
        ("7,0-2", (0, 1, 2, 7)),
        ("3", (3,)),
        ("9", (9,)),
        ("2-2", (2,)),
        ("0-9", tuple(range(10))),
        ("1,1,0-1", (0, 1)),
    ],
    ids=[
        "all", "all-upper", "all-padded", "range-and-single", "whitespace", "unsorted", "single", "last", "one-wide-range", "everything",
        "overlapping",
    ],
)
def test_parse_partition_spec(spec, expected):
    assert parse_partition_spec(spec, 10) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("4-2", "runs backwards"),
        ("0-10", "outside 0-9"),
        ("10", "outside 0-9"),
        ("-1", "expected 'all' or numbers"),
        ("x", "expected 'all' or numbers"),
        ("1-x", "expected 'all' or numbers"),
        ("1,,2", "expected 'all' or numbers"),
        ("3,", "expected 'all' or numbers"),
        ("", "expected 'all' or numbers"),
        ("1.5", "expected 'all' or numbers"),
        ("allx", "expected 'all' or numbers"),
    ],
    ids=[
        "backwards", "range-out-of-range", "single-out-of-range", "negative", "garbage", "garbage-in-range", "empty-item", "trailing-comma",
        "empty", "fraction", "almost-all",
    ],
)
def test_parse_partition_spec_rejects(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_partition_spec(spec, 10)


def test_out_of_range_error_names_the_partition_count():
    with pytest.raises(ValueError, match=r"NUM_PARTITIONS=10"):
        parse_partition_spec("0-20", 10)


@pytest.mark.parametrize(
    ("partitions", "parts", "expected"),
    [
        ((0, 1, 2, 3, 4, 5, 6, 7, 8, 9), 2, [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)]),
        ((0, 1, 2, 3, 4, 5, 6, 7, 8, 9), 3, [(0, 1, 2, 3), (4, 5, 6), (7, 8, 9)]),
        ((0, 1, 2), 5, [(0,), (1,), (2,)]),
        ((0, 1, 2), 1, [(0, 1, 2)]),
        ((0, 1, 2), 0, [(0, 1, 2)]),
        ((2, 5, 9), 2, [(2, 5), (9,)]),
    ],
    ids=["halves", "thirds-extra-first", "more-parts-than-partitions", "one", "zero-means-one", "sparse"],
)
def test_split_evenly(partitions, parts, expected):
    assert split_evenly(partitions, parts) == expected


@pytest.mark.parametrize("parts", [1, 2, 3, 4, 7, 10, 11])
def test_split_evenly_covers_every_partition_once_in_near_equal_groups(parts):
    partitions = tuple(range(10))
    groups = split_evenly(partitions, parts)
    assert tuple(p for group in groups for p in group) == partitions
    assert all(groups)
    assert max(map(len, groups)) - min(map(len, groups)) <= 1
    assert len(groups) == min(parts, len(partitions))


@pytest.mark.parametrize(
    ("partitions", "spec"),
    [((0, 1, 2, 5), "0-2,5"), ((7,), "7"), ((0, 2, 4), "0,2,4"), (tuple(range(10)), "0-9"), ((8, 9, 0, 1), "0-1,8-9")],
    ids=["run-and-single", "single", "no-runs", "all", "unsorted"],
)
def test_format_partition_spec(partitions, spec):
    assert format_partition_spec(partitions) == spec


@pytest.mark.parametrize("spec", ["all", "0-4,7", "0,2,4,6,8", "9", "1-3,5-6,9"])
def test_format_round_trips_through_parse(spec):
    partitions = parse_partition_spec(spec, 10)
    assert parse_partition_spec(format_partition_spec(partitions), 10) == partitions
