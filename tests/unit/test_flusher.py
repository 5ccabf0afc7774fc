"""The flusher thread against a fake store: order, retries of transient errors, finding a poison message."""
from __future__ import annotations

import threading

import pytest

from tests.fakes import FakeClock, FakeStore, database_error, pending
from tests.helpers import wait_for
from worker.buffer import Batch, CountBuffer
from worker.flusher import Flusher, Written

H = 1752660000  # 2025-07-16T10:00:00Z
IDS = [f"0190f1c2-7a3b-7c4d-9e8f-0000000000{n:02d}" for n in range(20)]


def batch_of(*messages: tuple[str, list[tuple[str, int, int]]], first_tag: int = 1) -> Batch:
    buffer = CountBuffer(max_messages=1000, max_age_s=1.0, clock=FakeClock())
    for tag, (message_id, views) in enumerate(messages, first_tag):
        buffer.add(pending(message_id, views, tag), views)
    return buffer.drain()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def give_up() -> threading.Event:
    return threading.Event()


@pytest.fixture
def flusher(store, give_up):
    flusher = Flusher(store, give_up=give_up.is_set)
    yield flusher
    give_up.set()
    flusher.close()


def completed(flusher: Flusher, count: int) -> list[Written]:
    done: list[Written] = []
    wait_for(lambda: done.extend(flusher.completed()) or len(done) >= count, what=f"{count} written batches")
    return done


def test_batches_are_written_and_handed_back_in_submission_order(flusher, store):
    first, second = batch_of((IDS[0], [("a", H, 1)])), batch_of((IDS[1], [("a", H, 2)]), first_tag=2)
    flusher.submit(first, session=1)
    flusher.submit(second, session=1)
    written = completed(flusher, 2)
    assert [w.batch for w in written] == [first, second]
    assert [w.applied.views for w in written] == [1, 2]
    assert all(w.error is None and w.rejected == [] and w.session == 1 for w in written)
    assert store.counts == {("a", H): 3}
    assert flusher.pending == 0


def test_pending_counts_batches_not_yet_handed_back(store, give_up):
    store.failing = database_error("57P01", "terminating connection due to administrator command")
    flusher = Flusher(store, give_up=give_up.is_set)
    try:
        flusher.submit(batch_of((IDS[0], [("a", H, 1)])), session=1)
        assert flusher.pending == 1
        wait_for(lambda: store.calls >= 1, what="a first attempt")
        assert flusher.completed() == [] and flusher.pending == 1
    finally:
        give_up.set()
        flusher.close()


def test_a_transient_error_is_retried_until_the_batch_commits(flusher, store):
    store.failures.append(database_error("57P01", "terminating connection due to administrator command"))
    flusher.submit(batch_of((IDS[0], [("a", H, 4)])), session=1)
    [written] = completed(flusher, 1)
    assert written.error is None and written.applied.views == 4
    assert store.calls == 2


def test_a_data_error_is_traced_to_its_message_and_the_others_are_written(flusher, store):
    store.rejected_pages = {"bad"}
    batch = batch_of((IDS[0], [("a", H, 1)]), (IDS[1], [("bad", H, 1), ("a", H, 5)]), (IDS[2], [("b", H, 2)]))
    flusher.submit(batch, session=1)
    [written] = completed(flusher, 1)
    assert written.error is None
    assert [r.pending for r in written.rejected] == [batch.messages[IDS[1]]]
    assert written.rejected[0].reason.startswith("rejected by the database: invalid byte sequence")
    assert (written.applied.messages, written.applied.views) == (2, 3)
    assert store.counts == {("a", H): 1, ("b", H): 2}


def test_giving_up_during_an_outage_hands_back_the_error(store, give_up):
    store.failing = database_error("57P01", "terminating connection due to administrator command")
    flusher = Flusher(store, give_up=give_up.is_set)
    try:
        flusher.submit(batch_of((IDS[0], [("a", H, 1)])), session=3)
        wait_for(lambda: store.calls >= 1, what="a first attempt")
        give_up.set()
        [written] = completed(flusher, 1)
        assert written.applied is None and written.session == 3
        assert "administrator command" in str(written.error.orig)
    finally:
        flusher.close()


def test_a_programming_error_is_not_retried(flusher, store):
    store.failures.append(RuntimeError("a bug"))
    flusher.submit(batch_of((IDS[0], [("a", H, 1)])), session=1)
    [written] = completed(flusher, 1)
    assert isinstance(written.error, RuntimeError) and store.calls == 1


def test_on_written_is_called_after_each_batch(store, give_up):
    calls = []
    flusher = Flusher(store, give_up=give_up.is_set, on_written=lambda: calls.append(len(store.counts)))
    try:
        flusher.submit(batch_of((IDS[0], [("a", H, 1)])), session=1)
        flusher.submit(batch_of((IDS[1], [("b", H, 1)])), session=1)
        wait_for(lambda: len(calls) == 2, what="two calls")
        assert calls == [1, 2]  # each after its batch was written
    finally:
        give_up.set()
        flusher.close()
